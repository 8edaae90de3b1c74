"""Check k8s/: kustomization.yaml lists every manifest, all parse, and (when kubectl is present)
render the kustomization to a file for schema validation.

Usage: python deploy/check_k8s.py [--render OUT.yaml]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
KUSTOMIZATION = "kustomization.yaml"
# What a real api-key.env would hold; only ever used for a throwaway render.
PLACEHOLDER_ENV = "api-key=placeholder-not-a-secret\n"


def manifest_files(directory: Path = K8S) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if p.name != KUSTOMIZATION)


def load_kustomization(directory: Path = K8S) -> dict[str, Any]:
    data = yaml.safe_load((directory / KUSTOMIZATION).read_text())
    assert isinstance(data, dict)
    return data


def listing_problems(directory: Path = K8S) -> list[str]:
    """Manifests missing from the kustomization, listed ones that do not exist, unparsable ones."""
    kust = load_kustomization(directory)
    listed = set(kust.get("resources", []))
    present = {p.name for p in manifest_files(directory)}
    problems = [f"{name} is not listed in {KUSTOMIZATION} resources" for name in present - listed]
    problems += [f"{KUSTOMIZATION} lists {name}, which does not exist" for name in listed - present]
    for path in manifest_files(directory):
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        except yaml.YAMLError as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        for doc in docs:
            if not {"apiVersion", "kind", "metadata"} <= doc.keys():
                problems.append(f"{path.name}: a document lacks apiVersion, kind or metadata")
    for gen in kust.get("secretGenerator", []) + kust.get("configMapGenerator", []):
        for env in gen.get("envs", []):
            if not (directory / f"{env}.example").exists():
                problems.append(f"generator input {env} has no {env}.example template")
    return problems


def render(directory: Path = K8S) -> str:
    """`kubectl kustomize` on a copy whose git-ignored generator inputs hold placeholders."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise FileNotFoundError("kubectl")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "k8s"
        shutil.copytree(directory, copy)
        for gen in load_kustomization(copy).get("secretGenerator", []):
            for env in gen.get("envs", []):
                (copy / env).write_text(PLACEHOLDER_ENV)
        out = subprocess.run([kubectl, "kustomize", str(copy)], check=True,
                             capture_output=True, text=True)
        return out.stdout


def main(argv: list[str]) -> int:
    problems = listing_problems()
    for problem in problems:
        print(f"k8s: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"k8s: {KUSTOMIZATION} lists all {len(manifest_files())} manifests; all parse")
    if len(argv) > 2 and argv[1] == "--render":
        try:
            Path(argv[2]).write_text(render())
        except FileNotFoundError:
            print("k8s: kubectl not found; kustomize rendering skipped", file=sys.stderr)
            return 3
        print(f"k8s: rendered with kubectl kustomize -> {argv[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
