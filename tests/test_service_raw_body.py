"""POST /identify with the image as the request body (``image/*``, ``application/octet-stream``):
the same answer as the multipart form, the same 4xx errors and limits, one route template."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from service.config import Settings
from service.testing.images import new_cover_png
from tests.conftest import app_client
from tests.test_service_bad_input import BAD_IMAGES

CATALOG_IMAGE = "alb-007.png"


def _raw(c: TestClient, data: bytes, ctype: str = "image/png", query: str = "") -> object:
    return c.post(f"/identify{query}", content=data, headers={"content-type": ctype})


def _same_answer(a: dict[str, object], b: dict[str, object]) -> None:
    """Equal apart from the stage times."""
    assert {k: v for k, v in a.items() if k != "timings_ms"} == \
        {k: v for k, v in b.items() if k != "timings_ms"}
    assert set(a["timings_ms"]) == set(b["timings_ms"])  # type: ignore[arg-type]


@pytest.mark.parametrize("ctype", ["image/png", "image/jpeg", "application/octet-stream",
                                   "Image/PNG; charset=binary"])
def test_raw_body_answers_like_the_form(module_client: TestClient, catalog_dir: Path,
                                        ctype: str) -> None:
    data = (catalog_dir / "images" / CATALOG_IMAGE).read_bytes()
    form = module_client.post("/identify?k=3", files={"image": ("q.png", data, "image/png")})
    raw = _raw(module_client, data, ctype, "?k=3")
    assert form.status_code == raw.status_code == 200, raw.text  # type: ignore[attr-defined]
    body = raw.json()  # type: ignore[attr-defined]
    assert body["matches"][0]["album_id"] == "alb-007" and len(body["matches"]) == 3
    assert raw.headers["content-type"] == "application/json"  # type: ignore[attr-defined]
    _same_answer(form.json(), body)


@pytest.mark.parametrize("name", list(BAD_IMAGES))
def test_raw_bad_images_get_422(module_client: TestClient, name: str) -> None:
    r = _raw(module_client, BAD_IMAGES[name], "image/jpeg")
    assert r.status_code == 422, (name, r.text)  # type: ignore[attr-defined]
    detail = r.json()["detail"]  # type: ignore[attr-defined]
    assert isinstance(detail, str) and detail
    assert _raw(module_client, new_cover_png(6)).status_code == 200  # type: ignore[attr-defined]


@pytest.mark.parametrize("k", ["0", "51", "abc"])
def test_raw_bad_k_gets_the_validation_422(module_client: TestClient, k: str) -> None:
    r = _raw(module_client, new_cover_png(8), query=f"?k={k}")
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert r.json()["detail"][0]["loc"] == ["query", "k"]  # type: ignore[attr-defined]


def test_raw_body_limits(make_settings: Callable[..., Settings]) -> None:
    with app_client(make_settings(max_upload_bytes=64 * 1024)) as c:
        assert _raw(c, b"\0" * (65 * 1024)).status_code == 413  # type: ignore[attr-defined]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            for _ in range(100):
                yield b"x" * 4096

        r = c.post("/identify", content=chunks(), headers={"content-type": "image/jpeg"})
        assert r.status_code == 413, r.text
        assert _raw(c, new_cover_png(6)).status_code == 200  # type: ignore[attr-defined]


def test_other_content_types_still_mean_the_form(module_client: TestClient) -> None:
    """A body that is neither a form nor declared an image is the form without ``image``."""
    r = _raw(module_client, new_cover_png(9), "text/plain")
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert r.json()["detail"][0]["loc"] == ["body", "image"]  # type: ignore[attr-defined]


def test_raw_camera_needs_the_key_and_counts_under_one_route(
        make_settings: Callable[..., Settings], catalog_dir: Path) -> None:
    data = (catalog_dir / "images" / CATALOG_IMAGE).read_bytes()
    with app_client(make_settings(api_key=SecretStr("k-123456"))) as c:
        assert _raw(c, data, query="?camera=aisle-1").status_code == 401  # type: ignore[attr-defined]
        r = c.post("/identify?camera=aisle-1", content=data,
                   headers={"content-type": "image/png", "x-api-key": "k-123456"})
        assert r.status_code == 200 and r.json()["identified"] == "alb-007", r.text
        bad = c.post("/identify?camera=bad%20id", content=data,
                     headers={"content-type": "image/png", "x-api-key": "k-123456"})
        assert bad.status_code == 422
        metrics = c.get("/metrics").text
        assert 'cratewatch_sightings_total 1.0' in metrics
        assert 'endpoint="/identify",method="POST",status="200"} 1.0' in metrics
        assert 'endpoint="/identify",method="POST",status="401"} 1.0' in metrics


def test_openapi_documents_both_bodies(module_client: TestClient) -> None:
    op = module_client.get("/openapi.json").json()["paths"]["/identify"]["post"]
    content = op["requestBody"]["content"]
    assert {"multipart/form-data", "image/jpeg", "application/octet-stream"} <= set(content)
    ref = content["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    schema = module_client.get("/openapi.json").json()["components"]["schemas"][ref]
    assert schema["required"] == ["image"]
