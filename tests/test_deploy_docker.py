"""The Dockerfile without a Docker engine: its rules checked statically, and its build stage
replayed in a clean virtualenv (same COPY sources, same RUN commands) that then serves HTTP."""

from __future__ import annotations

import fnmatch
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from service.config import Settings
from service.testing.server import free_port

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [rest for kw, rest in self.instructions if kw == keyword]


def parse_dockerfile(path: Path = DOCKERFILE) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], parts[0])
            stages.append(Stage(base, parts[2] if len(parts) > 2 else str(len(stages))))
        elif keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            global_args[name] = default
        elif stages:
            stages[-1].instructions.append((keyword, rest))
    return global_args, stages


def stage(name: str) -> Stage:
    return next(s for s in parse_dockerfile()[1] if s.name == name)


def env_of(st: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for rest in st.args("ENV"):
        for item in shlex.split(rest):
            key, _, value = item.partition("=")
            env[key] = value
    return env


def copy_sources(st: Stage) -> list[str]:
    """Build-context paths (globs allowed) copied into a stage; ``--from`` copies excluded."""
    sources = []
    for rest in st.args("COPY"):
        words = rest.split()
        if any(w.startswith("--from") for w in words):
            continue
        sources += [w for w in words if not w.startswith("--")][:-1]
    return sources


def test_bases_are_pinned_slim_python_311() -> None:
    _, stages = parse_dockerfile()
    assert [s.name for s in stages] == ["build", "runtime"]  # multi-stage
    for st in stages:
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", st.base), st.base


def test_runtime_stage_is_non_root_with_healthcheck_and_volumes() -> None:
    runtime = stage("runtime")
    user = runtime.args("USER")[-1]
    match = re.search(r"ARG UID=(\d+)", DOCKERFILE.read_text())
    assert match, "the Dockerfile declares its uid as ARG UID"
    uid = user.replace("${UID}", match[1])
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", uid), "numeric non-root uid:gid (runAsNonRoot)"
    (health,) = runtime.args("HEALTHCHECK")
    assert "/healthz" in health and "urllib.request" in health
    volumes = " ".join(runtime.args("VOLUME"))
    assert '"/data"' in volumes and '"/catalog"' in volumes


def test_runtime_env_names_real_settings_and_leaves_threads_to_the_cpu_limit() -> None:
    env = env_of(stage("runtime"))
    names = {k.removeprefix("CRATEWATCH_").lower() for k in env if k.startswith("CRATEWATCH_")}
    assert names and names <= Settings.model_fields.keys()
    # Unset, the service counts CPUs from cgroup cpu.max: a fixed number here would be wrong
    # for every container started with a different --cpus.
    assert "CRATEWATCH_THREADS" not in env
    assert env["CRATEWATCH_PORT"] in " ".join(stage("runtime").args("EXPOSE"))
    model = Path(env["CRATEWATCH_MODEL"])
    copied = [rest.split() for rest in stage("runtime").args("COPY")]
    assert any(words[-1].rstrip("/") == str(model.parent) and
               f"models/{model.name}" in words for words in copied)


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics, enough for this file: last matching pattern wins, ``!`` keeps."""
    ignored = False
    parents = [str(Path(path).parents[i]) for i in range(len(Path(path).parts) - 1)]
    for pattern in patterns:
        keep = pattern.startswith("!")
        pat = pattern.lstrip("!").rstrip("/").removeprefix("**/")
        candidates = [path, *parents, Path(path).name]
        if any(fnmatch.fnmatch(c, pat) for c in candidates):
            ignored = not keep
    return ignored


def test_dockerignore_keeps_what_the_build_copies_and_drops_the_rest() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    needed = [s for st in parse_dockerfile()[1] for s in copy_sources(st)]
    for source in needed:
        # A glob that matches nothing (README* before there is a README) copies nothing.
        matches = glob.glob(str(ROOT / source))
        for path in matches or ([] if set("*?[") & set(source) else [str(ROOT / source)]):
            rel = str(Path(path).relative_to(ROOT))
            assert not _ignored(rel, patterns), f"{rel} is copied but .dockerignore drops it"
    for heavy in ("tests/test_deploy_docker.py", "training/x.py", ".venv/bin/python",
                  ".git/HEAD", "catalog/albums.csv", "models/epoch-3.pt", "data/a.sqlite3",
                  "service/__pycache__/app.cpython-311.pyc"):
        assert _ignored(heavy, patterns), f"{heavy} would be sent to the Docker daemon"


def _copy(source: Path, dest: Path, into_dir: bool) -> None:
    """Docker's COPY: a directory's contents go into ``dest``; a file lands in or at ``dest``."""
    if source.is_dir():
        shutil.copytree(source, dest, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
        return
    target = dest / source.name if into_dir else dest
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def _replay_build_stage(tmp: Path) -> tuple[Path, Path]:
    """Lay out the build stage's files under ``tmp/root`` and run its RUN commands there."""
    build = stage("build")
    root = tmp / "root"
    workdir = root / build.args("WORKDIR")[-1].lstrip("/")
    for rest in build.args("COPY"):
        *sources, dest = rest.split()
        target = root / dest.lstrip("/") if dest.startswith("/") else workdir / dest
        for source in sources:
            matches = sorted(glob.glob(str(ROOT / source)))
            assert matches or set("*?[") & set(source), f"COPY {source}: not in the repo"
            for path in matches:
                _copy(Path(path), target, dest.endswith("/") or len(sources) > 1)
    # Container paths become paths under root; nothing else in the commands changes.
    env = {**os.environ, "PYTHON": sys.executable,
           "PATH": f"{root}/usr/local/bin:{os.environ['PATH']}", **env_of(build)}
    env.pop("VIRTUAL_ENV", None)
    for command in build.args("RUN"):
        local = re.sub(r"(?<![\w.])/(opt|src|usr/local/bin)\b",
                       lambda m: f"{root}/{m.group(1)}", command)
        done = subprocess.run(["/bin/sh", "-c", local], cwd=workdir, env=env,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"RUN {command}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    return root / "opt" / "venv", root / "opt" / "catalog"


@pytest.mark.slow
def test_build_stage_installs_service_without_torch_and_it_serves(
    tmp_path: Path, tiny_model: Path
) -> None:
    venv, demo_catalog = _replay_build_stage(tmp_path)
    python = venv / "bin" / "python"
    probe = "import importlib.util as u; print(u.find_spec('torch') is None)"
    assert subprocess.run([python, "-c", probe], capture_output=True, text=True,
                          check=True).stdout.strip() == "True"
    # Only the service's own dependencies: no training or dev extras leaked in.
    freeze = subprocess.run([python, "-m", "pip", "freeze"], capture_output=True, text=True,
                            check=True).stdout.lower()
    assert "onnxruntime" in freeze and "faiss-cpu" in freeze
    assert not re.search(r"^(torch|torchvision|pytest|onnx)==", freeze, re.M)
    assert (demo_catalog / "albums.csv").exists()

    port = free_port()
    env = {**os.environ, "CRATEWATCH_PORT": str(port), "CRATEWATCH_HOST": "127.0.0.1",
           "CRATEWATCH_CATALOG": str(demo_catalog), "CRATEWATCH_DATA": str(tmp_path / "data"),
           "CRATEWATCH_MODEL": str(tiny_model), "CRATEWATCH_THREADS": "1"}
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([venv / "bin" / "cratewatch", "serve"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        assert _wait_for_health(f"http://127.0.0.1:{port}/healthz", proc), _tail(tmp_path)
        # The image's HEALTHCHECK command, run by the venv's python, passes against it ...
        exec_form = json.loads(stage("runtime").args("HEALTHCHECK")[0].split(" CMD ", 1)[1])
        run = [str(python) if w == "python" else w for w in exec_form]
        assert subprocess.run(run, env=env, timeout=30).returncode == 0
        # ... and fails against a port nobody listens on.
        dead = {**env, "CRATEWATCH_PORT": str(free_port())}
        assert subprocess.run(run, env=dead, capture_output=True, timeout=30).returncode != 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _wait_for_health(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 120) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    return False


def _tail(tmp_path: Path) -> str:
    return (tmp_path / "serve.log").read_text(errors="replace")[-3000:]
