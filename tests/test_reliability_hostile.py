"""Hostile images (tests/hostile.py) vs the real app: identify the odd-but-valid, refuse the rest.

In-process through the lifespan for the corpus; a real ``cratewatch serve`` for slow uploads.
"""

from __future__ import annotations

import io
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.config import Settings
from service.testing.hostile import (
    ORIENTATION_FIX,
    malformed,
    multipart,
    real_pixel_bomb,
    unusual_but_valid,
)
from service.testing.images import new_cover_png
from service.testing.server import LiveServer
from tests.conftest import app_client

ALBUMS = ["alb-003", "alb-017", "alb-028"]
FORMATS = list(unusual_but_valid(Image.new("RGB", (8, 8))))
BAD = malformed()


def _cover(catalog_dir: Path, album_id: str) -> Image.Image:
    return Image.open(catalog_dir / "images" / f"{album_id}.png").convert("RGB")


def _top(client: TestClient, data: bytes, name: str = "x.bin") -> str:
    r = client.post("/identify", files={"image": (name, data, "application/octet-stream")})
    assert r.status_code == 200, r.text
    top: str = r.json()["matches"][0]["album_id"]
    return top


@pytest.mark.parametrize("fmt", FORMATS)
def test_unusual_but_valid_images_are_identified(module_client: TestClient, catalog_dir: Path,
                                                 fmt: str) -> None:
    for album_id in ALBUMS:
        data = unusual_but_valid(_cover(catalog_dir, album_id))[fmt]
        assert _top(module_client, data) == album_id, (fmt, album_id)


@pytest.fixture(scope="module")
def embedding_client(tiny_model: Path, catalog_dir: Path,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The embedding-only path (``rerank=False``): no rotation-tolerant verification."""
    settings = Settings(catalog=catalog_dir, data=tmp_path_factory.mktemp("embedding-data"),
                        model=tiny_model, threads=1, rerank=False)
    with app_client(settings) as client:
        yield client


@pytest.mark.parametrize("orientation", sorted(ORIENTATION_FIX))
def test_exif_orientation_is_what_makes_the_match(embedding_client: TestClient,
                                                 catalog_dir: Path, orientation: int) -> None:
    """On the embedding alone (RANSAC verification finds rotated covers by itself, so it would
    hide a decoder that ignores the tag), the tagged JPEG identifies its album and the same
    stored (rotated) pixels without the tag do not: the tag is what makes the match."""
    misses = 0
    for album_id in ALBUMS:
        tagged = unusual_but_valid(_cover(catalog_dir, album_id))[
            f"jpeg-exif-orientation-{orientation}"]
        assert _top(embedding_client, tagged) == album_id, album_id
        stripped = io.BytesIO()
        Image.open(io.BytesIO(tagged)).save(stripped, format="PNG")  # pixels only, no EXIF
        misses += _top(embedding_client, stripped.getvalue()) != album_id
    assert misses == len(ALBUMS)


@pytest.mark.parametrize("fmt", ["jpeg-cmyk", "png-16bit-gray", "jpeg-exif-orientation-6",
                                 "webp-lossy", "gif-animated", "tiff"])
def test_unusual_formats_can_be_enrolled(module_client: TestClient, fmt: str) -> None:
    cover = Image.open(io.BytesIO(new_cover_png(500 + FORMATS.index(fmt))))
    album_id = f"fmt-{fmt}"
    r = module_client.post("/catalog/add", data={"artist": "a", "title": fmt,
                                                  "album_id": album_id},
                            files={"image": ("c", unusual_but_valid(cover)[fmt], "image/x")})
    assert r.status_code == 201, r.text
    assert _top(module_client, new_cover_png(500 + FORMATS.index(fmt))) == album_id
    assert module_client.get(f"/catalog/{album_id}/image").status_code == 200


@pytest.mark.parametrize("name", list(BAD))
@pytest.mark.parametrize("route", ["/identify", "/catalog/add"])
def test_malformed_images_get_4xx_json(module_client: TestClient, name: str, route: str) -> None:
    album_id = f"bad-{list(BAD).index(name)}"
    for content_type in ("image/jpeg", "image/svg+xml", "text/html"):
        r = module_client.post(route, files={"image": ("x.jpg", BAD[name], content_type)},
                                data={"artist": "a", "title": "t", "album_id": album_id})
        assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/json")
        assert isinstance(r.json()["detail"], str) and r.json()["detail"]
    assert module_client.get(f"/catalog/{album_id}").status_code == 404


def test_pixel_limit_is_a_setting(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    """A real, fully valid 2000x2000 PNG of a few KB: fine by default, refused under a low limit."""
    bomb = real_pixel_bomb(2000)
    assert len(bomb) < 100_000
    with app_client(make_settings(data=tmp_path / "a")) as client:
        r = client.post("/identify", files={"image": ("b.png", bomb, "image/png")})
        assert r.status_code == 200
    with app_client(make_settings(data=tmp_path / "b", max_image_pixels=1_000_000)) as client:
        r = client.post("/identify", files={"image": ("b.png", bomb, "image/png")})
        assert r.status_code == 422 and "pixel limit" in r.json()["detail"]
        assert _top(client, new_cover_png(1)) is not None


@pytest.mark.parametrize("route", ["/identify", "/catalog/add"])
def test_60_mb_body_gets_413(module_client: TestClient, route: str) -> None:
    body = b"\xff" * (60 * 1024 * 1024)
    r = module_client.post(route, files={"image": ("big.jpg", body, "image/jpeg")},
                            data={"artist": "a", "title": "t"})
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    assert module_client.get("/healthz").status_code == 200


class Trickler(threading.Thread):
    """Slowloris: a complete, valid multipart upload sent a few bytes at a time."""

    def __init__(self, url: str, body: bytes, content_type: str, step: int = 8,
                 pause_s: float = 0.2, give_up_s: float = 60.0) -> None:
        super().__init__(daemon=True)
        self.url, self.body, self.content_type = url, body, content_type
        self.step, self.pause_s, self.give_up_s = step, pause_s, give_up_s
        self.sent = 0
        self.reply = b""

    def run(self) -> None:
        host, port = self.url.removeprefix("http://").split(":")
        head = (f"POST /identify HTTP/1.1\r\nHost: {host}\r\nContent-Type: {self.content_type}"
                f"\r\nContent-Length: {len(self.body)}\r\n\r\n").encode()
        deadline = time.monotonic() + self.give_up_s
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(head)
            while self.sent < len(self.body) and time.monotonic() < deadline:
                if select.select([sock], [], [], self.pause_s)[0]:
                    break  # the server answered before the body was complete
                try:
                    sock.sendall(self.body[self.sent : self.sent + self.step])
                except OSError:
                    break
                self.sent += self.step
            self.reply = _read_all(sock)


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    except OSError:
        pass
    return b"".join(chunks)


def test_slow_uploads_are_cut_off_while_others_are_served(live_server: LiveServer,
                                                          catalog_dir: Path) -> None:
    server = live_server
    server.env.update({"CRATEWATCH_REQUEST_TIMEOUT_S": "2"})
    server.start()
    body, content_type = multipart("image", "c.png", new_cover_png(77), "image/png")
    slow = [Trickler(server.url, body, content_type) for _ in range(4)]
    for t in slow:
        t.start()
    served = 0
    while any(t.is_alive() for t in slow):
        cover = (catalog_dir / "images" / "alb-005.png").read_bytes()
        r = httpx.post(f"{server.url}/identify", files={"image": ("c.png", cover)}, timeout=30)
        assert r.status_code == 200 and r.json()["matches"][0]["album_id"] == "alb-005"
        served += 1
        time.sleep(0.1)
    for t in slow:
        t.join()
        assert t.sent < len(body), "the server waited for the whole slow body"
        assert t.reply.startswith(b"HTTP/1.1 408"), t.reply[:200]
        assert b'"detail"' in t.reply
    assert served >= 1
    assert httpx.get(f"{server.url}/healthz", timeout=30).status_code == 200
