"""What the HTTP layer costs per /identify, without the identification itself.

    PYTHONPATH=. .venv/bin/python benchmarks/http_overhead.py   # writes reports/http-overhead.md

The real app (tiny test embedder, generated covers) through its lifespan, called as an ASGI
app with no server and no client: the engine's ``identify`` answers a recorded result at once,
so the time left is routing, the metrics and body-limit middleware, form parsing (multipart)
or reading the body (raw), admission, the worker-thread hop, response validation and JSON.
Medians over ``--requests`` calls per transport, alternating transports round by round.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.lean_client import body_of
from service.app import create_app
from service.config import Settings
from service.testing.images import make_catalog
from service.testing.tiny_model import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]


async def call(app: Any, ctype: bytes, body: bytes) -> int:
    """One POST /identify straight into the ASGI app; returns the status code."""
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # no disconnect while the answer is being sent
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/identify", "raw_path": b"/identify",
             "query_string": b"k=5", "root_path": "", "server": ("127.0.0.1", 80),
             "client": ("127.0.0.1", 1), "app": app,
             "headers": [(b"host", b"x"), (b"content-type", ctype),
                         (b"content-length", str(len(body)).encode())]}
    await app(scope, receive, send)
    return status


async def measure(app: Any, image: bytes, requests: int, rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"multipart": [], "raw": []}
    for _ in range(rounds):
        for transport in times:
            ctype, body = body_of(image, transport, "image/png")
            for _ in range(requests):
                t0 = time.perf_counter()
                assert await call(app, ctype, body) == 200
                times[transport].append((time.perf_counter() - t0) * 1e3)
    return times


async def run(work: Path, requests: int, rounds: int) -> dict[str, list[float]]:
    catalog = work / "catalog"
    make_catalog(catalog, n=20)
    app = create_app(Settings(catalog=catalog, data=work / "data", threads=1,
                              model=build_tiny_model(work / "tiny.onnx")))
    async with app.router.lifespan_context(app):
        engine = app.state.engine
        while not engine.ready:
            await asyncio.sleep(0.05)
        image = (catalog / "images" / "alb-003.png").read_bytes()
        answer = engine.identify(image, 5)
        engine.identify = lambda data, k: answer  # the HTTP layer alone from here on
        await measure(app, image, 50, 1)  # warm-up
        return await measure(app, image, requests, rounds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=500, help="per transport and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--report", type=Path, default=ROOT / "benchmarks/reports/http-overhead.md")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cw-http-") as tmp:
        times = asyncio.run(run(Path(tmp), a.requests, a.rounds))
    lines = ["| transport | calls | median ms | p90 ms |", "|---|---:|---:|---:|"]
    for name, t in times.items():
        p90 = statistics.quantiles(t, n=10)[-1]
        lines.append(f"| {name} | {len(t)} | {statistics.median(t):.3f} | {p90:.3f} |")
    print("\n".join(lines))
    a.report.parent.mkdir(parents=True, exist_ok=True)
    a.report.write_text(
        "# HTTP layer per /identify (benchmarks/http_overhead.py)\n\n"
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: the app called as "
        "ASGI (no server, no client), the identification replaced by a recorded answer.\n\n"
        + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
