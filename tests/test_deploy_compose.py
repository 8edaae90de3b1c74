"""docker-compose.yml: valid Compose (schema, after interpolation), fails closed without an API
key, and wired consistently with the image, Prometheus and the service settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from deploy import check_compose
from service.config import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    assert check_compose.check(COMPOSE, ENV_EXAMPLE) == []


def test_schema_rejects_a_misspelt_key(tmp_path: Path) -> None:
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(COMPOSE.read_text().replace("    mem_limit:", "    memory_limit:"))
    problems = check_compose.check(bad, ENV_EXAMPLE)
    assert any("memory_limit" in p for p in problems), problems


def test_every_variable_is_documented_and_the_api_key_is_required(tmp_path: Path) -> None:
    env = check_compose.read_env_file(ENV_EXAMPLE)
    assert check_compose.referenced_variables(COMPOSE.read_text()) <= env.keys()
    assert env["CRATEWATCH_API_KEY"] == "", "the example must not ship a usable key"
    # Left blank, `docker compose up` refuses to start rather than run without write auth.
    try:
        check_compose.interpolate_tree(compose(), env)
    except ValueError as exc:
        assert "CRATEWATCH_API_KEY" in str(exc)
    else:
        raise AssertionError("compose interpolated without an API key")


def test_cratewatch_names_in_env_example_are_real_settings() -> None:
    """``CRATEWATCH_*`` means a service setting; compose-only knobs (host port, catalog path on
    the host, container limits) are named otherwise, and the service receives every setting
    the example sets."""
    env = check_compose.read_env_file(ENV_EXAMPLE)
    settings = {k for k in env if k.startswith("CRATEWATCH_")}
    assert settings, "the example sets at least the API key"
    assert {k.removeprefix("CRATEWATCH_").lower() for k in settings} <= Settings.model_fields.keys()
    passed = compose()["services"]["cratewatch"]["environment"]
    assert settings <= passed.keys(), settings - passed.keys()
    assert {"CATALOG_DIR", "API_HOST_PORT", "API_CPUS", "API_MEMORY"} <= env.keys()


def test_interpolation_follows_compose_rules() -> None:
    env = {"SET": "x", "EMPTY": ""}
    interp = check_compose.interpolate
    assert interp("${SET:-d} ${EMPTY:-d} ${UNSET:-d} ${EMPTY-d} $$SET $SET", env) == "x d d  $SET x"


def test_cratewatch_service_matches_image_and_settings() -> None:
    svc = compose()["services"]["cratewatch"]
    assert svc["build"]["context"] == "."
    targets = {v["target"]: v for v in svc["volumes"]}
    assert targets["/catalog"]["read_only"] is True  # the catalog directory is never written
    assert targets["/data"]["type"] == "volume"
    assert svc["ports"][0].endswith(":8000")
    assert svc["read_only"] is True and "/tmp" in svc["tmpfs"]
    names = {k.removeprefix("CRATEWATCH_").lower() for k in svc["environment"]}
    assert names <= Settings.model_fields.keys()


def test_prometheus_scrapes_the_compose_service_and_images_are_pinned() -> None:
    services = compose()["services"]
    prom = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == "cratewatch")
    host, port = job["static_configs"][0]["targets"][0].split(":")
    assert host in services and services[host]["ports"][0].endswith(f":{port}")
    for name in ("prometheus", "grafana"):
        image = services[name]["image"]
        assert ":" in image and not image.endswith(":latest"), image
    for volume in services["prometheus"]["volumes"]:
        source = volume.split(":")[0]
        assert not source.startswith("./") or (ROOT / source).is_dir(), source
