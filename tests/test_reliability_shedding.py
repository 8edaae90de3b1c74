"""Load shedding: past ``max_inflight`` identify requests, 503 + Retry-After at once, never another
5xx, and normal service again as soon as the queue drains.

The embedder is the real one, slowed by a gate the test opens, so "the queue is full" is a fact
of the test and not a race against the machine's speed.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from service.config import Settings
from service.testing.server import LiveServer
from tests.conftest import app_client

LIMIT = 2


def _metric(client: TestClient, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exposed")


def _gate_embedder(client: TestClient) -> threading.Event:
    """Hold every embed until the returned event is set (the embedder itself stays real)."""
    embedder = client.app.state.engine.embedder  # type: ignore[attr-defined]
    real: Callable[..., Any] = embedder.embed_images
    gate = threading.Event()

    def slowed(images: Any) -> Any:
        assert gate.wait(timeout=60), "gate never opened"
        return real(images)

    embedder.embed_images = slowed
    return gate


def _identify(client: TestClient, cover: bytes) -> Any:
    return client.post("/identify", files={"image": ("c.png", cover, "image/png")})


def test_full_queue_sheds_then_recovers(make_settings: Callable[..., Settings],
                                        catalog_dir: Path) -> None:
    cover = (catalog_dir / "images" / "alb-009.png").read_bytes()
    with app_client(make_settings(max_inflight=LIMIT)) as client, \
            ThreadPoolExecutor(max_workers=LIMIT + 6) as pool:
        gate = _gate_embedder(client)
        held: list[Future[Any]] = [pool.submit(_identify, client, cover) for _ in range(LIMIT)]
        deadline = time.monotonic() + 60
        while _metric(client, "cratewatch_inflight_requests") < LIMIT:
            assert time.monotonic() < deadline, "requests never got in flight"
            time.sleep(0.02)
        extra = [pool.submit(_identify, client, cover) for _ in range(6)]
        shed = [f.result(timeout=60) for f in extra]  # answered while the gate is still shut
        assert not gate.is_set()
        assert all(r.status_code == 503 for r in shed), [r.status_code for r in shed]
        assert all(r.headers["retry-after"].isdigit() for r in shed)
        assert all(r.json()["detail"] for r in shed)
        gate.set()
        for f in held:
            r = f.result(timeout=60)
            assert r.status_code == 200 and r.json()["matches"][0]["album_id"] == "alb-009"
        assert _metric(client, "cratewatch_shed_total") == 6
        # Drained: everything is served again, and reads were never shed.
        assert _metric(client, "cratewatch_inflight_requests") == 0
        for _ in range(4):
            assert _identify(client, cover).status_code == 200
        assert client.get("/catalog").status_code == 200


def test_burst_smoke_only_200_or_503_on_a_live_server(tiny_model: Path, catalog_dir: Path,
                                                      tmp_path: Path) -> None:
    """Smoke test, not the proof of shedding: a real server and a real burst give nothing but
    200 or a proper 503, and every 503 is a counted shed. How many are shed depends on the
    machine's speed (none is possible), so shedding itself is proven deterministically by
    ``test_full_queue_sheds_then_recovers``; the counts feed benchmarks/reliability.py."""
    server = LiveServer(catalog_dir, tmp_path / "data", tiny_model, tmp_path / "logs",
                        env={"CRATEWATCH_MAX_INFLIGHT": str(LIMIT)})
    cover = (catalog_dir / "images" / "alb-011.png").read_bytes()

    def one(_: int) -> httpx.Response:
        return httpx.post(f"{server.url}/identify", timeout=60,
                          files={"image": ("c.png", cover, "image/png")})

    try:
        server.start()
        with ThreadPoolExecutor(max_workers=16) as pool:
            replies = list(pool.map(one, range(48)))
        codes = sorted({r.status_code for r in replies})
        assert set(codes) <= {200, 503}, codes
        assert all(r.headers.get("retry-after") for r in replies if r.status_code == 503)
        assert all(r.json()["matches"][0]["album_id"] == "alb-011"
                   for r in replies if r.status_code == 200)
        assert one(0).status_code == 200
        metrics = httpx.get(f"{server.url}/metrics", timeout=60).text
        shed = re.findall(r"^cratewatch_shed_total (\S+)$", metrics, re.M)
        assert shed == [f"{float(sum(r.status_code == 503 for r in replies))}"], shed
        figures = {"requests": len(replies), "clients": 16, "max_inflight": LIMIT,
                   **{f"status_{c}": sum(r.status_code == c for r in replies) for c in codes}}
        print("shedding burst figures:", json.dumps(figures))
        if out := os.environ.get("CRATEWATCH_RELIABILITY_OUT"):
            Path(out).mkdir(parents=True, exist_ok=True)
            (Path(out) / "shedding.json").write_text(json.dumps(figures, indent=2) + "\n")
    finally:
        server.stop()
