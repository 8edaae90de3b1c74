"""Identify benchmark: start ``cratewatch serve``, send N crops at concurrency C, report latency.

    .venv/bin/python benchmarks/identify.py --albums 200 --requests 200 --concurrency 4

Without --catalog it generates procedural covers and CCTV-style crops of them; without a usable
--model it builds the tiny test embedder (so latency then reflects the service, not a real net).
Prints p50/p99 latency and throughput and writes a markdown report (default
benchmarks/reports/identify.md).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from benchmarks.lean_client import LeanClient, Reply, body_of
from service.config import available_cpus
from service.demo import degrade
from service.testing.images import make_catalog
from service.testing.server import LiveServer

ROOT = Path(__file__).resolve().parents[1]


def crops_for(catalog: Path, n: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """(album_id, JPEG bytes) CCTV-style views of random catalog covers."""
    with (catalog / "albums.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    rng = np.random.default_rng(seed)
    out = []
    for i in rng.choice(len(rows), size=min(n, len(rows)), replace=False):
        row = rows[int(i)]
        cover = Image.open(catalog / row["image"]).convert("RGB")
        buf = io.BytesIO()
        degrade(cover.resize((384, 384)), rng).save(buf, format="JPEG", quality=80)
        out.append((row["album_id"], buf.getvalue()))
    return out


def query_crops(queries: Path, level: str, n: int) -> list[tuple[str, bytes]]:
    """(album_id, bytes) of the first ``n`` crops of ``level`` in a query set."""
    with (queries / "queries.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("level", level) == level][:n]
    return [(r["album_id"], (queries / r["path"]).read_bytes()) for r in rows]


async def drive(url: str, crops: list[tuple[str, bytes]], n: int, concurrency: int,
                client: str = "httpx", transport: str = "multipart"
                ) -> tuple[list[float], int, int, float, int]:
    """Send n requests (cycling through crops); returns latencies, top-1 hits, errors, wall s
    and how many the embedding answered alone (the gate). ``client``: httpx (AsyncClient,
    multipart only) or lean (``benchmarks/lean_client.py``, one keep-alive socket per worker);
    ``transport``: multipart (form field ``image``) or raw (the image as the body)."""
    latencies: list[float] = []
    hits = errors = gated = 0
    queue = list(range(n))
    bodies = [(album_id, body_of(data, transport)) for album_id, data in crops]

    async def send(http: httpx.AsyncClient | LeanClient, i: int) -> Reply | httpx.Response:
        if isinstance(http, LeanClient):
            ctype, body = bodies[i % len(bodies)][1]
            return await http.post("/identify", ctype, body)
        data = crops[i % len(crops)][1]
        return await http.post(f"{url}/identify", files={"image": ("c.jpg", data, "image/jpeg")})

    async def worker(http: httpx.AsyncClient | LeanClient) -> None:
        nonlocal hits, errors, gated
        while queue:
            i = queue.pop()
            start = time.perf_counter()
            r = await send(http, i)
            latencies.append(time.perf_counter() - start)
            if r.status_code != 200:
                errors += 1
                continue
            body = r.json()
            hits += body["matches"][0]["album_id"] == crops[i % len(crops)][0]
            gated += body.get("decided_by") == "embedding"

    if client == "lean":
        lean = [LeanClient(url) for _ in range(concurrency)]
        started = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in lean))
        wall = time.perf_counter() - started
        for c in lean:
            await c.close()
        return latencies, hits, errors, wall, gated
    if transport != "multipart":
        raise SystemExit("--client httpx sends multipart only")
    async with httpx.AsyncClient(timeout=60) as http:
        started = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        return latencies, hits, errors, time.perf_counter() - started, gated


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--catalog", type=Path, help="existing catalog dir (default: generate)")
    p.add_argument("--albums", type=int, default=200, help="albums to generate")
    p.add_argument("--model", type=Path, default=ROOT / "models" / "cratewatch-embedder.onnx")
    p.add_argument("--tiny", action="store_true",
                   help="the tiny test embedder instead of --model: the service's own overhead")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--crops", type=int, default=50, help="distinct crops to cycle through")
    p.add_argument("--queries", type=Path, help="query set (queries.csv) to take crops from "
                   "instead of generating them, e.g. runs/stress/queries/report/tight")
    p.add_argument("--level", default="medium", help="level of --queries crops to use")
    p.add_argument("--data", type=Path, help="data dir to reuse (warm start; default: temp)")
    p.add_argument("--threads", type=int, default=available_cpus(), help="CRATEWATCH_THREADS")
    p.add_argument("--client", choices=("httpx", "lean"), default="httpx",
                   help="httpx AsyncClient, or a lean keep-alive socket client per worker")
    p.add_argument("--transport", choices=("multipart", "raw"), default="multipart",
                   help="form field 'image', or the image as the request body (lean only)")
    p.add_argument("--report", type=Path, default=ROOT / "benchmarks" / "reports" / "identify.md")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="cw-bench-") as tmp:
        work = Path(tmp)
        catalog = args.catalog or work / "catalog"
        if args.catalog is None:
            make_catalog(catalog, n=args.albums, size=256)
        model = args.model
        if args.tiny or not model.is_file():
            from service.testing.tiny_model import build_tiny_model

            if not args.tiny:
                print(f"{model} not found: using the tiny test embedder", file=sys.stderr)
            model = build_tiny_model(work / "tiny.onnx")
        crops = (query_crops(args.queries, args.level, args.crops) if args.queries
                 else crops_for(catalog, args.crops))
        server = LiveServer(catalog, args.data or work / "data", model, work / "logs",
                            env={"CRATEWATCH_THREADS": str(args.threads)})
        server.start(timeout_s=1800)
        try:
            ready = server.wait_ready()
            mode = (args.client, args.transport)
            asyncio.run(drive(server.url, crops, min(10, args.requests), 1, *mode))  # warm-up
            lat, hits, errors, wall, gated = asyncio.run(
                drive(server.url, crops, args.requests, args.concurrency, *mode))
        finally:
            server.stop()
    ms = np.array(lat) * 1000
    result = {
        "albums": ready.get("albums"), "model": f"{model.name} ({ready.get('model_version')})",
        "client": f"{args.client} {args.transport}", "requests": args.requests,
        "concurrency": args.concurrency, "ort_threads": args.threads,
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "throughput_rps": round(args.requests / wall, 1), "errors": errors,
        "top1": round(hits / args.requests, 3), "crops": args.level if args.queries else "synth",
        "gate_share": round(gated / args.requests, 3),
    }
    print(" ".join(f"{k}={v}" for k, v in result.items()))
    write_report(args.report, result)
    return 0 if errors == 0 else 1


def write_report(path: Path, result: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "| " + " | ".join(result) + " |"
    line = "|" + "---|" * len(result)
    row = "| " + " | ".join(str(v) for v in result.values()) + " |"
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} host CPUs, "
               f"{available_cpus()} usable, Python {platform.python_version()}")
    path.write_text(
        "# /identify benchmark\n\n"
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine}.\n"
        "Client and server share the machine; latency is client-side wall time per request.\n"
        "top1 is the share of crops whose own album ranked first.\n\n"
        f"{header}\n{line}\n{row}\n"
    )
    print(f"report written to {path}")


if __name__ == "__main__":
    sys.exit(main())
