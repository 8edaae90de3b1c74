"""The real app through its lifespan: identify, enrol, delete, API key, readiness, metrics."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from service.testing.images import new_cover_png
from tests.conftest import app_client, wait_ready


def _file(data: bytes, name: str = "crop.png") -> dict[str, tuple[str, bytes, str]]:
    return {"image": (name, data, "image/png")}


def test_identify_ranks_own_clean_image_first(
    client: TestClient, catalog_dir: Path, catalog_rows: list[dict[str, str]]
) -> None:
    for row in catalog_rows[::7]:
        data = (catalog_dir / row["image"]).read_bytes()
        r = client.post("/identify?k=3", files=_file(data))
        assert r.status_code == 200, r.text
        body = r.json()
        assert [m["rank"] for m in body["matches"]] == [1, 2, 3]
        top = body["matches"][0]
        assert top["album_id"] == row["album_id"]
        assert (top["artist"], top["title"]) == (row["artist"], row["title"])
        assert top["metadata"] == {"genre": "test"}
        assert top["score"] > body["matches"][1]["score"]
        assert body["model_version"] == "tiny-test-1"
        assert set(body["timings_ms"]) >= {"decode", "embed", "search"}


def test_add_then_identify_then_delete(client: TestClient) -> None:
    cover = new_cover_png(1)
    r = client.post("/catalog/add", files=_file(cover),
                    data={"artist": "New Artist", "title": "New Title", "album_id": "new-1",
                          "label": "Own Label"})
    assert r.status_code == 201, r.text
    assert r.json() == {"album_id": "new-1"}
    top = client.post("/identify", files=_file(cover)).json()["matches"][0]
    assert top["album_id"] == "new-1" and top["metadata"] == {"label": "Own Label"}
    assert client.get("/catalog/new-1").json()["source"] == "enrolled"
    image = client.get("/catalog/new-1/image")
    assert image.status_code == 200 and image.content == cover
    assert image.headers["content-type"] == "image/png"
    again = client.post("/catalog/add", files=_file(cover),
                        data={"artist": "x", "title": "y", "album_id": "new-1"})
    assert again.status_code == 409
    assert client.get("/catalog").json()["total"] == 31

    assert client.delete("/catalog/new-1").status_code == 204
    ids = [m["album_id"] for m in client.post("/identify?k=50", files=_file(cover)).json()[
        "matches"]]
    assert "new-1" not in ids and len(ids) == 30
    assert client.get("/catalog/new-1").status_code == 404
    assert client.delete("/catalog/new-1").status_code == 404


def test_add_without_album_id_generates_one(client: TestClient) -> None:
    r = client.post("/catalog/add", files=_file(new_cover_png(2)),
                    data={"artist": "a", "title": "t"})
    assert r.status_code == 201
    assert client.get(f"/catalog/{r.json()['album_id']}").status_code == 200


def test_delete_catalog_album_hides_it(client: TestClient, catalog_dir: Path,
                                       catalog_rows: list[dict[str, str]]) -> None:
    row = catalog_rows[3]
    assert client.delete(f"/catalog/{row['album_id']}").status_code == 204
    data = (catalog_dir / row["image"]).read_bytes()
    ids = [m["album_id"] for m in client.post("/identify?k=50", files=_file(data)).json()[
        "matches"]]
    assert row["album_id"] not in ids
    assert (catalog_dir / row["image"]).exists()  # the catalog directory is never modified


def test_catalog_paging(client: TestClient, catalog_rows: list[dict[str, str]]) -> None:
    page = client.get("/catalog?offset=10&limit=5").json()
    assert page["total"] == 30 and [a["album_id"] for a in page["albums"]] == [
        r["album_id"] for r in catalog_rows[10:15]]
    assert client.get("/catalog?limit=0").status_code == 422


def test_api_key_guards_writes(make_settings: Callable[..., Settings], caplog: object) -> None:
    key = "s3cret-key-value-123"
    with app_client(make_settings(api_key=key)) as c:
        form = {"artist": "a", "title": "t", "album_id": "keyed"}
        assert c.post("/catalog/add", files=_file(new_cover_png(3)), data=form).status_code == 401
        wrong = c.post("/catalog/add", files=_file(new_cover_png(3)), data=form,
                       headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401 and wrong.json()["detail"]
        assert c.delete("/catalog/alb-000").status_code == 401
        ok = c.post("/catalog/add", files=_file(new_cover_png(3)), data=form,
                    headers={"X-API-Key": key})
        assert ok.status_code == 201
        assert c.delete("/catalog/keyed", headers={"X-API-Key": key}).status_code == 204
        # reads stay open
        assert c.post("/identify", files=_file(new_cover_png(3))).status_code == 200
    assert key not in caplog.text  # type: ignore[attr-defined]
    assert key not in repr(make_settings(api_key=key))


def test_readyz_503_until_loaded_then_200(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings())
    app.state.engine.load_gate.clear()  # hold loading so the "not ready" state is observable
    with TestClient(app) as c:
        assert c.get("/healthz").status_code == 200
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "loading"
        assert "cratewatch_ready 0.0" in c.get("/metrics").text
        assert c.post("/identify", files=_file(new_cover_png(4))).status_code == 503
        app.state.engine.load_gate.set()
        assert wait_ready(c)["albums"] == 30
        assert "cratewatch_ready 1.0" in c.get("/metrics").text


def test_missing_model_reports_failed(make_settings: Callable[..., Settings],
                                      tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(model=tmp_path / "none.onnx"))) as c:
        while (r := c.get("/readyz")).json()["status"] == "loading":
            time.sleep(0.05)
        assert r.status_code == 503 and r.json()["status"] == "failed"
        assert c.get("/healthz").status_code == 200


CONTRACT_METRICS = [
    "cratewatch_requests_total", "cratewatch_request_duration_seconds_bucket",
    "cratewatch_stage_duration_seconds_bucket", "cratewatch_identifications_total",
    "cratewatch_catalog_albums", "cratewatch_model_info", "cratewatch_ready",
    "cratewatch_inflight_requests", "cratewatch_shed_total",
]


def test_metrics_expose_contract_names(client: TestClient, catalog_dir: Path) -> None:
    data = (catalog_dir / "images" / "alb-000.png").read_bytes()
    assert client.post("/identify", files=_file(data)).status_code == 200
    assert client.post("/identify?k=0", files=_file(data)).status_code == 422
    text = client.get("/metrics").text
    names = set(re.findall(r"^(cratewatch_\w+)", text, flags=re.M))
    assert set(CONTRACT_METRICS) <= names
    assert 'cratewatch_requests_total{endpoint="/identify",method="POST",status="200"} 1.0' in text
    assert 'cratewatch_requests_total{endpoint="/identify",method="POST",status="422"} 1.0' in text
    for stage in ("decode", "embed", "search"):
        assert f'cratewatch_stage_duration_seconds_count{{stage="{stage}"}} 1.0' in text
    assert "cratewatch_identifications_total 1.0" in text
    assert "cratewatch_catalog_albums 30.0" in text
    assert 'version="tiny-test-1"' in text
    client.get("/no/such/path")
    assert 'endpoint="unmatched",method="GET",status="404"' in client.get("/metrics").text


def test_openapi_documents_every_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("description") or op.get("summary"), (method, path)
    assert client.get("/docs").status_code == 200


def test_approximate_index_above_exact_limit(make_settings: Callable[..., Settings],
                                             catalog_dir: Path) -> None:
    for kind in ("hnsw", "ivf"):
        settings = make_settings(exact_search_limit=10, approx_index=kind,
                                 data=make_settings().data / kind)
        with app_client(settings) as c:
            stats = c.get("/readyz").json()
            assert stats["index"] == kind and 0.0 < stats["recall_at_10"] <= 1.0
            data = (catalog_dir / "images" / "alb-012.png").read_bytes()
            top = c.post("/identify", files=_file(data)).json()["matches"][0]
            assert top["album_id"] == "alb-012"
            assert c.delete("/catalog/alb-012").status_code == 204
            ids = [m["album_id"] for m in c.post("/identify?k=50", files=_file(data)).json()[
                "matches"]]
            assert "alb-012" not in ids
