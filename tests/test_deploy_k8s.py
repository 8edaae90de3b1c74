"""k8s/: every manifest listed in the kustomization, and the rendered objects wired together
(probes, threads = CPU limit, non-root, read-only root, PVC, Secret, Service, HPA)."""

from __future__ import annotations

import re
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy import check_k8s
from service.config import Settings

ROOT = Path(__file__).resolve().parent.parent


@cache
def objects() -> dict[str, dict[str, Any]]:
    """Rendered by kubectl kustomize when it is installed, else the raw manifests."""
    if shutil.which("kubectl"):
        docs = list(yaml.safe_load_all(check_k8s.render()))
    else:
        docs = [d for p in check_k8s.manifest_files() for d in yaml.safe_load_all(p.read_text())]
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs if d}


def deployment() -> dict[str, Any]:
    return objects()["Deployment/cratewatch"]


def container() -> dict[str, Any]:
    (c,) = deployment()["spec"]["template"]["spec"]["containers"]
    return c


def env_var(name: str) -> dict[str, Any]:
    return next(e for e in container()["env"] if e["name"] == name)


def test_kustomization_lists_every_manifest() -> None:
    assert check_k8s.listing_problems() == []


def test_an_unlisted_manifest_is_caught(tmp_path: Path) -> None:
    copy = tmp_path / "k8s"
    shutil.copytree(check_k8s.K8S, copy)
    (copy / "networkpolicy.yaml").write_text("apiVersion: v1\nkind: X\nmetadata: {name: x}\n")
    assert check_k8s.listing_problems(copy) == [
        "networkpolicy.yaml is not listed in kustomization.yaml resources"]


def test_probes_hit_readyz_and_healthz_on_the_served_port() -> None:
    c = container()
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["port"] in ports
    config = objects()["ConfigMap/cratewatch-config"]["data"]
    assert int(config["CRATEWATCH_PORT"]) == ports["http"]


def test_onnx_threads_follow_the_cpu_limit() -> None:
    c = container()
    assert {"cpu", "memory"} <= c["resources"]["requests"].keys()
    assert {"cpu", "memory"} <= c["resources"]["limits"].keys()
    ref = env_var("CRATEWATCH_THREADS")["valueFrom"]["resourceFieldRef"]
    assert ref["resource"] == "limits.cpu" and ref["containerName"] == c["name"]
    assert str(ref["divisor"]) == "1"  # whole CPUs, rounded up by the kubelet


def test_runs_non_root_with_read_only_root_and_writable_tmp_and_data() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    c = container()
    match = re.search(r"ARG UID=(\d+)", (ROOT / "Dockerfile").read_text())
    assert match, "the Dockerfile declares its uid as ARG UID"
    uid = match[1]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == uid
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in c["volumeMounts"]}
    assert "emptyDir" in mounts["/tmp"]
    claim = mounts["/data"]["persistentVolumeClaim"]["claimName"]
    assert f"PersistentVolumeClaim/{claim}" in objects()
    config = objects()["ConfigMap/cratewatch-config"]["data"]
    assert config["CRATEWATCH_DATA"] == "/data"


def test_configmap_holds_only_real_settings() -> None:
    data = objects()["ConfigMap/cratewatch-config"]["data"]
    names = {k.removeprefix("CRATEWATCH_").lower() for k in data}
    assert names <= Settings.model_fields.keys(), names - Settings.model_fields.keys()
    ref = container()["envFrom"][0]["configMapRef"]["name"]
    assert f"ConfigMap/{ref}" in objects()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl kustomize")
def test_api_key_comes_from_the_generated_secret() -> None:
    ref = env_var("CRATEWATCH_API_KEY")["valueFrom"]["secretKeyRef"]
    secret = objects()[f"Secret/{ref['name']}"]
    assert ref["key"] in secret["data"]


def test_api_key_template_holds_no_key() -> None:
    template = (ROOT / "k8s" / "api-key.env.example").read_text()
    assert not [ln for ln in template.splitlines() if ln.strip() and not ln.startswith("#")]
    assert "/k8s/api-key.env" in (ROOT / ".gitignore").read_text().split()


def test_service_and_hpa_point_at_the_deployment() -> None:
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    service = objects()["Service/cratewatch"]["spec"]
    assert service["selector"].items() <= labels.items()
    assert service["ports"][0]["targetPort"] in {p["name"] for p in container()["ports"]}
    hpa = objects()["HorizontalPodAutoscaler/cratewatch"]["spec"]
    assert hpa["scaleTargetRef"]["kind"] == "Deployment"
    assert hpa["scaleTargetRef"]["name"] == deployment()["metadata"]["name"]


def test_one_writer_while_the_data_volume_is_read_write_once() -> None:
    # Each replica holds its own index and SQLite store (README, Deploy, "More than one
    # replica"): scaling out needs a storage and enrolment design first, not a bigger number.
    pvc = objects()["PersistentVolumeClaim/cratewatch-data"]["spec"]
    assert pvc["accessModes"] == ["ReadWriteOnce"]
    assert deployment()["spec"]["replicas"] == 1
    assert deployment()["spec"]["strategy"]["type"] == "Recreate"
    assert objects()["HorizontalPodAutoscaler/cratewatch"]["spec"]["maxReplicas"] == 1
