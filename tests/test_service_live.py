"""The real ``cratewatch serve`` process: SIGKILL durability, shedding, slow uploads, secrets."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from service.testing.images import new_cover_png
from service.testing.server import LiveServer


def _file(data: bytes) -> dict[str, tuple[str, bytes, str]]:
    return {"image": ("x.png", data, "image/png")}


def test_enrolled_album_survives_sigkill(live_server: LiveServer) -> None:
    live_server.start()
    covers = {f"durable-{i}": new_cover_png(30 + i) for i in range(3)}
    for album_id, cover in covers.items():
        r = httpx.post(f"{live_server.url}/catalog/add", files=_file(cover),
                       data={"artist": "a", "title": album_id, "album_id": album_id}, timeout=30)
        assert r.status_code == 201, r.text
    assert httpx.delete(f"{live_server.url}/catalog/alb-001", timeout=30).status_code == 204
    live_server.kill()  # right after the last acknowledgement: no graceful shutdown
    live_server.start()
    for album_id, cover in covers.items():
        top = httpx.post(f"{live_server.url}/identify", files=_file(cover), timeout=30).json()[
            "matches"][0]
        assert top["album_id"] == album_id and top["title"] == album_id
    assert httpx.get(f"{live_server.url}/catalog/alb-001", timeout=30).status_code == 404
    assert httpx.get(f"{live_server.url}/readyz", timeout=30).json()["embedded"] == 0


def _open_partial_upload(url: str, path: str, declared: int, sent: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {declared}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n\r\n")
    sock.sendall(head.encode() + sent)
    return sock


def _read_until_closed(sock: socket.socket) -> str:
    chunks = []
    while chunk := sock.recv(4096):
        chunks.append(chunk)
    sock.close()
    return b"".join(chunks).decode(errors="replace")


def _metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exposed")


def test_unfinished_upload_holds_no_identify_slot(live_server: LiveServer) -> None:
    """Only a complete body takes an in-flight slot (issue 11, defect 2); shedding itself is
    tests/test_reliability_shedding.py."""
    server = live_server
    server.env.update({"CRATEWATCH_MAX_INFLIGHT": "1"})
    server.start()
    holder = _open_partial_upload(server.url, "/identify", 10_000, b"--b\r\n")
    time.sleep(0.5)  # the request has reached the app (loopback)
    assert _metric(server.url, "cratewatch_inflight_requests") == 0
    r = httpx.post(f"{server.url}/identify", files=_file(new_cover_png(40)), timeout=30)
    assert r.status_code == 200
    assert _metric(server.url, "cratewatch_shed_total") == 0
    holder.close()
    # `make run`'s one clear line: where, how many albums, which model.
    assert (f"READY: http://127.0.0.1:{server.port} serving 30 albums with model tiny-test-1"
            in server.log())


def test_slow_upload_times_out_with_408(live_server: LiveServer) -> None:
    server = live_server
    server.env.update({"CRATEWATCH_REQUEST_TIMEOUT_S": "1"})
    server.start()
    sock = _open_partial_upload(server.url, "/identify", 10_000, b"--b\r\n")
    reply = _read_until_closed(sock)  # blocks until the server answers and hangs up
    assert reply.startswith("HTTP/1.1 408"), reply
    assert "not received within" in reply
    assert httpx.get(f"{server.url}/healthz", timeout=30).status_code == 200


def test_api_key_is_never_logged(tiny_model: Path, catalog_dir: Path, tmp_path: Path) -> None:
    key = "k3y-that-must-not-leak-0042"
    server = LiveServer(catalog_dir, tmp_path / "data", tiny_model, tmp_path / "logs",
                        env={"CRATEWATCH_API_KEY": key, "CRATEWATCH_LOG_LEVEL": "DEBUG"})
    try:
        server.start()
        for given in (key, "wrong-guess-key-9876"):
            httpx.post(f"{server.url}/catalog/add", files=_file(new_cover_png(41)),
                       data={"artist": "a", "title": "t"}, headers={"X-API-Key": given},
                       timeout=30)
        assert httpx.delete(f"{server.url}/catalog/alb-000", timeout=30).status_code == 401
    finally:
        server.stop()
    log = server.log()
    assert "POST /catalog/add" in log  # the access log is there...
    assert key not in log and "wrong-guess-key-9876" not in log  # ...the keys are not
    assert "is not set" not in log  # no open-writes warning when a key is set


def test_open_writes_warning(live_server: LiveServer) -> None:
    live_server.start()
    assert "CRATEWATCH_API_KEY is not set" in live_server.log()


def test_oversize_bodies_get_413_from_the_real_server(live_server: LiveServer) -> None:
    live_server.start()
    url = f"{live_server.url}/identify"
    declared = httpx.post(url, files=_file(b"\0" * (60 * 1024 * 1024)), timeout=60)
    assert declared.status_code == 413 and "limit" in declared.json()["detail"]

    def streamed() -> Iterator[bytes]:  # chunked: no Content-Length to check up front
        yield (b'--zz\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
               b"Content-Type: image/jpeg\r\n\r\n")
        for _ in range(60):
            yield b"\xff" * (1024 * 1024)
        yield b"\r\n--zz--\r\n"

    counted = httpx.post(url, content=streamed(), timeout=60,
                         headers={"content-type": "multipart/form-data; boundary=zz"})
    assert counted.status_code == 413
    assert httpx.get(f"{live_server.url}/healthz", timeout=30).status_code == 200
