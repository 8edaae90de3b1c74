"""Per-request cost of the app's middleware stack (request metrics included), in process.

    .venv/bin/python benchmarks/metrics_overhead.py --requests 3000 --rounds 5

Sends requests straight to the ASGI app (httpx's ASGITransport: no sockets, no lifespan, so
nothing loads) for routes that need no model: ``GET /healthz``, ``GET /catalog/{album_id}``
(503 while not loaded: a templated route) and a path no route serves (404). Prints the median
microseconds per request over ``--rounds``. Run it with ``PYTHONPATH`` at another checkout to
compare versions of the stack (this is how prometheus-fastapi-instrumentator was compared with
the hand-written metrics middleware it replaced). Appends to benchmarks/reports/metrics.md
with ``--label``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from service.app import create_app
from service.config import Settings

ROOT = Path(__file__).resolve().parents[1]
PATHS = ["/healthz", "/catalog/some-album", "/no/such/path"]


async def per_request_us(client: httpx.AsyncClient, path: str, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        await client.get(path)
    return (time.perf_counter() - started) / n * 1e6


async def measure(requests: int, rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(catalog=Path(tmp), data=Path(tmp) / "data"))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for path in PATHS:  # warm-up: route tables, metric children
                await per_request_us(client, path, 50)
            runs: dict[str, list[float]] = {p: [] for p in PATHS}
            for _ in range(rounds):
                for path in PATHS:
                    runs[path].append(await per_request_us(client, path, requests))
    return {p: statistics.median(v) for p, v in runs.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--label", default="", help="append a row with this label to --out")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/reports/metrics.md")
    args = p.parse_args()
    result = asyncio.run(measure(args.requests, args.rounds))
    row = " | ".join(f"{result[path]:.0f}" for path in PATHS)
    print(f"{args.label or 'this checkout'}: µs per request {dict(result)}")
    if args.label:
        if not args.out.exists():
            args.out.write_text(
                "# Middleware cost per request (µs, median of rounds, in process)\n\n"
                "Command: `.venv/bin/python benchmarks/metrics_overhead.py --requests "
                f"{args.requests} --rounds {args.rounds} --label LABEL` (PYTHONPATH at the "
                "checkout measured). Shared 2-CPU machine.\n\n"
                "| stack | " + " | ".join(f"`GET {path}`" for path in PATHS) + " |\n"
                "|---|" + "---|" * len(PATHS) + "\n")
        with args.out.open("a") as fh:
            fh.write(f"| {args.label} | {row} |\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
