"""Slow uploaders must not lock fast clients out of /identify (issue 11, defect 2).

A real ``cratewatch serve`` and real sockets: more slow clients than ``MAX_INFLIGHT`` send their
headers and half their body, then stall. A request only counts against ``MAX_INFLIGHT`` once its
body is in, so fast clients are still served; when the slow bodies finally complete they get a
proper answer too.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import httpx

from service.testing.hostile import multipart
from service.testing.images import new_cover_png
from service.testing.server import LiveServer

LIMIT = 2
SLOW = 6


def _read_reply(sock: socket.socket) -> bytes:
    sock.settimeout(60)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b'"' in chunks[-1] and chunks[-1].endswith(b"}"):
                break
    except OSError:
        pass
    return b"".join(chunks)


def _open_stalled(url: str, body: bytes, content_type: str) -> socket.socket:
    """Headers plus half the body, then nothing: the upload is still "arriving"."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    head = (f"POST /identify HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    sock.sendall(head + body[: len(body) // 2])
    return sock


def test_slow_bodies_do_not_count_against_max_inflight(live_server: LiveServer,
                                                       catalog_dir: Path) -> None:
    server = live_server
    server.env.update({"CRATEWATCH_MAX_INFLIGHT": str(LIMIT),
                       "CRATEWATCH_REQUEST_TIMEOUT_S": "60"})
    server.start()
    body, content_type = multipart("image", "c.png", new_cover_png(5), "image/png")
    stalled = [_open_stalled(server.url, body, content_type) for _ in range(SLOW)]
    try:
        time.sleep(1.0)  # every stalled request has reached the app by now (loopback)
        cover = (catalog_dir / "images" / "alb-006.png").read_bytes()
        codes = []
        for _ in range(5):
            r = httpx.post(f"{server.url}/identify", files={"image": ("c.png", cover)},
                           timeout=30)
            codes.append(r.status_code)
            if r.status_code == 200:
                assert r.json()["matches"][0]["album_id"] == "alb-006"
        assert codes == [200] * 5, f"{SLOW} stalled uploads shut fast clients out: {codes}"
        # The slow bodies complete: each gets a real answer (200, or 503 if they now collide).
        for sock in stalled:
            sock.sendall(body[len(body) // 2 :])
        replies = [_read_reply(sock) for sock in stalled]
    finally:
        for sock in stalled:
            sock.close()
    statuses = [reply.split(b" ", 2)[1].decode() if reply else "none" for reply in replies]
    assert set(statuses) <= {"200", "503"}, statuses
    assert "200" in statuses
    figures = {"max_inflight": LIMIT, "stalled_uploads": SLOW, "fast_requests": len(codes),
               "fast_served": codes.count(200),
               "slow_after_completion": {s: statuses.count(s) for s in sorted(set(statuses))}}
    print("slow-body figures:", json.dumps(figures))
    if out := os.environ.get("CRATEWATCH_RELIABILITY_OUT"):
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "slow_bodies.json").write_text(json.dumps(figures, indent=2) + "\n")
