"""The Grafana dashboard and the alert rules name only metrics a running cratewatch exposes,
and the dashboard JSON has the structure Grafana's provisioning loads."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "cratewatch.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"

# PromQL words that look like identifiers but are not metric names.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
            "unless", "offset", "bool", "inf", "nan", "atan2"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: strings, label matchers, grouping clauses, ranges,
    function calls and keywords removed; what is left are the selectors' names."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    names = set()
    for m in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*", expr):
        if expr[m.end():].lstrip().startswith("(") or m.group(0) in KEYWORDS:
            continue
        names.add(m.group(0))
    return names


def family(name: str) -> str:
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def dashboard_exprs() -> list[str]:
    """PromQL of the Prometheus panels (the analytics panels run SQL on PostgreSQL)."""
    return [t["expr"] for p in dashboard()["panels"] for t in p["targets"] if "expr" in t]


def alert_exprs() -> list[str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule["expr"] for g in groups for rule in g["rules"]]


def exposed_names(client: TestClient, catalog_dir: Path) -> set[str]:
    """Sample and family names on /metrics after one successful /identify."""
    image = next((catalog_dir / "images").iterdir())
    r = client.post("/identify", files={"image": (image.name, image.read_bytes(), "image/png")})
    assert r.status_code == 200, r.text
    text = client.get("/metrics").text
    names = set()
    for fam in text_string_to_metric_families(text):
        names.add(fam.name)
        names |= {sample.name for sample in fam.samples}
    return names


def test_metric_name_parser_finds_selectors_only() -> None:
    expr = ('histogram_quantile(0.99, sum by (stage, le) (rate(a_seconds_bucket{x=~"by|on"}'
            '[$__rate_interval]))) / on(instance) group_left(version) b_info * 60 > bool c')
    assert metric_names(expr) == {"a_seconds_bucket", "b_info", "c"}


def test_every_dashboard_and_alert_metric_is_exposed(client: TestClient,
                                                     catalog_dir: Path) -> None:
    exposed = exposed_names(client, catalog_dir)
    exposed_families = {family(n) for n in exposed}
    for expr in dashboard_exprs() + alert_exprs():
        names = metric_names(expr)
        assert names, f"no metric found in {expr!r}"
        for name in names - {"up"}:  # `up` is Prometheus's own, per scrape target
            assert name in exposed or family(name) in exposed_families, (
                f"{name} (in {expr!r}) is not on cratewatch's /metrics")
    # Histogram panels must really have series to plot once traffic arrived.
    assert {"cratewatch_stage_duration_seconds_bucket",
            "cratewatch_request_duration_seconds_bucket"} <= exposed


def test_dashboard_has_the_structure_grafana_provisions() -> None:
    dash = dashboard()
    assert dash["uid"] == "cratewatch" and dash["title"]
    assert isinstance(dash["schemaVersion"], int) and dash["schemaVersion"] >= 36
    sources = {s["uid"]: s["type"] for f in ("prometheus.yml", "postgres.yml") for s in
               yaml.safe_load((GRAFANA / "provisioning" / "datasources" / f).read_text())
               ["datasources"]}
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    cells: set[tuple[int, int]] = set()
    for panel in dash["panels"]:
        assert panel["type"] in {"stat", "timeseries", "table"} and panel["title"]
        source = panel["datasource"]
        assert sources.get(source["uid"]) == source["type"], panel["title"]
        grid = panel["gridPos"]
        assert {"x", "y", "w", "h"} <= grid.keys() and grid["x"] + grid["w"] <= 24
        area = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not area & cells, f"panel {panel['title']!r} overlaps another"
        cells |= area
        refs = [t["refId"] for t in panel["targets"]]
        assert panel["targets"] and len(refs) == len(set(refs))
        assert all(t["datasource"] == source for t in panel["targets"])
        assert all(("expr" in t) == (source["type"] == "prometheus") for t in panel["targets"])


def test_dashboard_has_the_panels_the_shop_needs() -> None:
    panels = {p["title"]: p for p in dashboard()["panels"]}
    exprs = {title: " ".join(t.get("expr", t.get("rawSql", "")) for t in p["targets"])
             for title, p in panels.items()}
    assert "sum by (endpoint, status)" in exprs["Request rate by endpoint and status"]
    stages = panels["Latency by stage (p50 / p95 / p99)"]["targets"]
    assert [t["expr"].split(",")[0] for t in stages] == [
        "histogram_quantile(0.5", "histogram_quantile(0.95", "histogram_quantile(0.99"]
    assert all("by (stage, le)" in t["expr"] for t in stages)
    assert 'status=~"5.."' in exprs["Error rate"]
    assert "cratewatch_catalog_albums" in exprs["Catalog size"]
    assert "cratewatch_identifications_total" in exprs["Identifications per minute"]
    assert exprs["Identifications per minute"].endswith("* 60")
    assert "cratewatch_model_info" in exprs["Model version"]
    assert "{{version}}" in panels["Model version"]["targets"][0]["legendFormat"]


def test_provisioning_paths_match_compose_mounts() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "cratewatch.yml").read_text())["providers"][0]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    grafana_env = compose["services"]["grafana"]["environment"]
    home = grafana_env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"
    source = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    assert "prometheus" in compose["services"]
