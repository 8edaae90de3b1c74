"""Every bad input of issue 2 gets a clear 4xx JSON error, never a 500; serving goes on."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.config import Settings
from service.testing.images import new_cover_png, png_with_declared_size
from tests.conftest import app_client


def _zero_sized_png() -> bytes:
    return png_with_declared_size(0, 0)


def _truncated_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (300, 300), (200, 30, 30)).save(buf, format="JPEG")
    return buf.getvalue()[:200]


BAD_IMAGES = {
    "empty upload": b"",
    "text posing as image": b"hello, I am definitely a JPEG",
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    "truncated jpeg": _truncated_jpeg(),
    "truncated png": new_cover_png(5)[:300],
    "zero-sized image": _zero_sized_png(),
    "40000x40000 header bomb": png_with_declared_size(40_000, 40_000),
}


@pytest.mark.parametrize("name", list(BAD_IMAGES))
@pytest.mark.parametrize("route", ["/identify", "/catalog/add"])
def test_bad_images_get_422(module_client: TestClient, name: str, route: str) -> None:
    r = module_client.post(route, files={"image": ("x.jpg", BAD_IMAGES[name], "image/jpeg")},
                           data={"artist": "a", "title": "t", "album_id": "never"})
    assert r.status_code == 422, (name, r.status_code, r.text)
    assert isinstance(r.json()["detail"], str) and r.json()["detail"]
    assert module_client.get("/catalog/never").status_code == 404
    _still_serving(module_client)


def _still_serving(c: TestClient) -> None:
    r = c.post("/identify", files={"image": ("ok.png", new_cover_png(6), "image/png")})
    assert r.status_code == 200


def test_60_mb_body_gets_413(module_client: TestClient) -> None:
    body = b"\0" * (60 * 1024 * 1024)
    r = module_client.post("/identify", files={"image": ("big.jpg", body, "image/jpeg")})
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    _still_serving(module_client)


def test_oversize_streamed_body_without_length_gets_413(
    make_settings: Callable[..., Settings]
) -> None:
    """No Content-Length (chunked): the limit is enforced by counting bytes as they arrive."""
    with app_client(make_settings(max_upload_bytes=64 * 1024)) as c:
        def chunks() -> Iterator[bytes]:
            for _ in range(100):
                yield b"x" * 4096

        r = c.post("/identify", content=chunks(),
                   headers={"content-type": "multipart/form-data; boundary=zzz"})
        assert r.status_code == 413, r.text
        _still_serving(c)


def test_wrong_field_name_gets_422(module_client: TestClient) -> None:
    r = module_client.post("/identify", files={"picture": ("x.png", new_cover_png(7),
                                                           "image/png")})
    assert r.status_code == 422 and "image" in str(r.json()["detail"])


def test_image_sent_as_text_field_gets_422(module_client: TestClient) -> None:
    r = module_client.post("/identify", data={"image": "not a file"})
    assert r.status_code == 422


def test_no_body_gets_422(module_client: TestClient) -> None:
    assert module_client.post("/identify").status_code == 422


@pytest.mark.parametrize("k", ["0", "1000", "-1", "abc", "51"])
def test_bad_k_gets_422(module_client: TestClient, k: str) -> None:
    r = module_client.post(f"/identify?k={k}", files={"image": ("x.png", new_cover_png(8),
                                                                "image/png")})
    assert r.status_code == 422


@pytest.mark.parametrize("album_id", ["../etc", "a/b", "..", "../../x", "a\\b", ".hidden",
                                      "x" * 200, "sp ace"])
def test_bad_album_id_on_add_gets_422(module_client: TestClient, album_id: str,
                                      tmp_path: Path) -> None:
    r = module_client.post("/catalog/add", files={"image": ("x.png", new_cover_png(9),
                                                            "image/png")},
                           data={"artist": "a", "title": "t", "album_id": album_id})
    assert r.status_code == 422, r.text


@pytest.mark.parametrize("path", ["/catalog/..%2F..%2Fetc", "/catalog/a%2Fb",
                                  "/catalog/%2E%2E", "/catalog/.hidden/image"])
def test_bad_album_id_in_path_is_4xx(module_client: TestClient, path: str) -> None:
    for method in ("GET", "DELETE"):
        r = module_client.request(method, path)
        assert 400 <= r.status_code < 500, (method, path, r.status_code)


def test_bad_metadata_field_gets_422(module_client: TestClient) -> None:
    r = module_client.post("/catalog/add", files={"image": ("x.png", new_cover_png(10),
                                                            "image/png")},
                           data={"artist": "a", "title": "t", "bad key!": "v"})
    assert r.status_code == 422


def test_missing_artist_gets_422(module_client: TestClient) -> None:
    r = module_client.post("/catalog/add", files={"image": ("x.png", new_cover_png(11),
                                                            "image/png")},
                           data={"title": "t"})
    assert r.status_code == 422
