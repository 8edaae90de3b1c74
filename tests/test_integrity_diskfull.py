"""Disk full and server errors (issue 11, defect 7), on a real full filesystem.

The data directory sits on a small tmpfs filled up with a real file: every write the service
makes meets a real ENOSPC / SQLITE_FULL. Mounting needs root (CAP_SYS_ADMIN); elsewhere these
tests skip and say why. The connection tests talk raw HTTP/1.1 to a real ``cratewatch serve``
to see whether the server keeps or closes the connection after a 5xx.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from service.config import Settings
from service.store import TMP_PREFIX
from service.testing.images import new_cover_png
from service.testing.server import LiveServer
from tests.conftest import add_album, app_client, top_album


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs mounted at a fresh directory, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill up (needs root): {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int = 0) -> Path:
    """Write a filler file until the disk is full, then free ``leave`` bytes."""
    filler = disk / "filler"
    chunk = b"\0" * 65536
    # Unbuffered: a partial last write must not leave bytes that fail again on close.
    with filler.open("ab", buffering=0) as fh:
        try:
            while True:
                fh.write(chunk)
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    if leave:
        os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def noise_png(seed: int, side: int = 320) -> bytes:
    """About 300 KB that does not compress: more than a nearly full disk has left."""
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def _temp_files(data: Path) -> list[str]:
    return [str(p) for p in data.rglob(f"{TMP_PREFIX}*")]


def test_disk_full_answers_507_and_leaves_nothing(
    small_disk: Path, make_settings: Callable[..., Settings], catalog_dir: Path
) -> None:
    settings = make_settings(data=small_disk / "data")
    big, catalog_cover = noise_png(1), (catalog_dir / "images" / "alb-004.png").read_bytes()
    with app_client(settings) as client:
        # Nearly full: the image write itself runs out of space half way.
        filler = fill(small_disk, leave=64 * 1024)
        status, body = add_album(client, "big", big)
        assert status == 507, body
        assert "full" in str(body["detail"]) and "nothing was stored" in str(body["detail"])
        assert _temp_files(settings.data) == []
        assert not list((settings.data / "images").glob("big.*"))
        assert client.get("/catalog/big").status_code == 404
        assert top_album(client, catalog_cover) == "alb-004"  # identification keeps working

        # Completely full: whichever write comes first fails, same answer.
        fill(small_disk)
        status, body = add_album(client, "small", new_cover_png(700))
        assert status == 507, body
        assert _temp_files(settings.data) == []
        deleted = client.delete("/catalog/alb-001")
        assert deleted.status_code in (204, 507), deleted.text
        assert (client.get("/catalog/alb-001").status_code == 404) == (
            deleted.status_code == 204)
        assert top_album(client, catalog_cover) == "alb-004"

        filler.unlink()  # space again: the same requests now work
        assert add_album(client, "big", big) == (201, {"album_id": "big"})
        assert top_album(client, big) == "big"
    with app_client(settings) as client:  # and what was acknowledged is on disk
        assert top_album(client, big) == "big"


def _http(sock: socket.socket, request: httpx.Request) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 exchange on an open socket (keep-alive unless the server says otherwise)."""
    body = request.read()
    head = [f"{request.method} {request.url.raw_path.decode()} HTTP/1.1", "Host: test"]
    head += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() != "host"]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {raw!r}"
        raw += chunk
    header_blob, rest = raw.split(b"\r\n\r\n", 1)
    lines = header_blob.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    while len(rest) < int(headers.get("content-length", 0)):
        rest += sock.recv(65536)
    return int(lines[0].split()[1]), headers, rest


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except (TimeoutError, ConnectionResetError):
        return False


def _add_request(url: str, album_id: str, data: bytes) -> httpx.Request:
    return httpx.Request("POST", f"{url}/catalog/add",
                         files={"image": ("c.png", data, "image/png")},
                         data={"artist": "a", "title": "t", "album_id": album_id})


@contextlib.contextmanager
def _connect(server: LiveServer) -> Iterator[socket.socket]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        yield sock


def test_507_keeps_the_connection_open(small_disk: Path, tiny_model: Path, catalog_dir: Path,
                                       tmp_path: Path) -> None:
    server = LiveServer(catalog_dir, small_disk / "data", tiny_model, tmp_path / "logs")
    try:
        server.start()
        fill(small_disk)
        with _connect(server) as sock:
            status, headers, body = _http(sock, _add_request(server.url, "x", noise_png(2)))
            assert status == 507, body
            assert headers.get("connection", "").lower() != "close"
            status, _, _ = _http(sock, httpx.Request("GET", f"{server.url}/healthz"))
            assert status == 200  # same socket: the server did not close it
    finally:
        server.stop()
    assert "Traceback" not in server.log()


def test_500_says_connection_close(live_server: LiveServer) -> None:
    live_server.start()
    # A real fault no handler maps: the images directory replaced by a file (ENOTDIR).
    images = live_server.data / "images"
    shutil.rmtree(images)
    images.write_bytes(b"")
    with _connect(live_server) as sock:
        status, headers, body = _http(sock, _add_request(live_server.url, "x", noise_png(3)))
        assert status == 500, body
        assert headers.get("connection", "").lower() == "close", headers
        assert _closed_by_server(sock)
    with httpx.Client() as client:  # the server itself is fine
        assert client.get(f"{live_server.url}/catalog/x").status_code == 404
        assert client.get(f"{live_server.url}/healthz").status_code == 200
