"""Load benchmark: ``cratewatch serve`` on 1,000+ albums, /identify at rising concurrency.

    .venv/bin/python benchmarks/load.py                      # 1, 4, 16, 64 clients
    .venv/bin/python benchmarks/load.py --albums 1000 --step-seconds 5 --step-requests 300

The server is a ``cratewatch serve`` subprocess on loopback; this process is the client. The
catalog is ``$CRATEWATCH_SHARED_DATA/covers`` or ``../shared/data/covers`` when present (topped
up to --albums by enrolling generated covers), else --albums generated covers. The model is
--model, else the bundled models/cratewatch-embedder.onnx, else the tiny test embedder.
Each step stops at --step-seconds or --step-requests answered, whichever comes first. Per
step: goodput, p50/p95/p99 latency of 200s, errors (anything but 200 or a 503 shed; must
be 0), 503s, and the server's resident memory. Writes benchmarks/reports/load.md.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from service.config import available_cpus
from service.demo import degrade, fake_album, make_cover, write_demo_catalog
from service.modelinfo import ModelInfo
from service.testing.server import LiveServer, rss_mb
from service.testing.tiny_model import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]

BUNDLED = ROOT / "models" / "cratewatch-embedder.onnx"


@dataclass
class Step:
    concurrency: int
    sent: int
    ok: int
    shed: int
    errors: int
    wall_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    rss_mb: float

    def row(self) -> str:
        return (f"| {self.concurrency} | {self.sent} | {self.ok / self.wall_s:.1f} | "
                f"{self.p50_ms:.1f} | {self.p95_ms:.1f} | {self.p99_ms:.1f} | {self.errors} | "
                f"{self.shed} | {self.rss_mb:.0f} |")


def shared_covers() -> Path | None:
    base = os.environ.get("CRATEWATCH_SHARED_DATA")
    path = (Path(base) if base else ROOT.parent / "shared" / "data") / "covers"
    return path if (path / "albums.csv").is_file() else None


def catalog_images(catalog: Path) -> list[Path]:
    import csv

    with (catalog / "albums.csv").open(newline="") as fh:
        return [catalog / row["image"] for row in csv.DictReader(fh)]


def make_queries(images: list[Path], n: int, seed: int = 0) -> list[bytes]:
    """CCTV-style JPEG crops of random catalog covers (decode cost like the real thing)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in rng.choice(len(images), size=min(n, len(images)), replace=False):
        cover = Image.open(images[int(i)]).convert("RGB").resize((384, 384))
        buf = io.BytesIO()
        degrade(cover, rng).save(buf, format="JPEG", quality=80)
        out.append(buf.getvalue())
    return out


def top_up(url: str, have: int, want: int) -> int:
    """Enrol generated covers until the service holds ``want`` albums; returns how many."""
    rng = np.random.default_rng(99)
    added = 0
    with httpx.Client(timeout=60) as client:
        for i in range(max(0, want - have)):
            artist, title = fake_album(rng)
            buf = io.BytesIO()
            make_cover(rng, artist, title, 256).save(buf, format="PNG")
            r = client.post(f"{url}/catalog/add", files={"image": ("c.png", buf.getvalue())},
                            data={"artist": artist, "title": title, "album_id": f"load-{i:05d}"})
            r.raise_for_status()
            added += 1
    return added


def multipart_body(image: bytes, boundary: str = "cratewatchload") -> tuple[bytes, str]:
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="q.jpg"'
            '\r\nContent-Type: image/jpeg\r\n\r\n').encode()
    return head + image + f"\r\n--{boundary}--\r\n".encode(), boundary


class Connection:
    """A minimal HTTP/1.1 keep-alive client. httpx's async pool costs more CPU per request than
    the service itself at 64 connections on a 2-CPU machine, and would measure the client."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, content_type: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: "
                          f"{content_type}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                          + body)
        await self.writer.drain()
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        status = int(head.split(" ", 2)[1])
        length = next((int(line.split(":", 1)[1]) for line in head.split("\r\n")
                       if line.startswith("content-length:")), None)
        if length is None or "connection: close" in head:
            self.close()  # the server will not reuse this connection
        else:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def run_step(url: str, queries: list[bytes], concurrency: int, max_requests: int,
                   max_seconds: float, pid: int) -> Step:
    host, port = url.removeprefix("http://").split(":")
    bodies = [multipart_body(q) for q in queries]
    latencies: list[float] = []
    counts = {"sent": 0, "ok": 0, "shed": 0, "errors": 0}
    stop_at = time.perf_counter() + max_seconds

    async def client_loop(worker: int) -> None:
        conn, i = Connection(host, int(port)), worker
        # The cap counts answered requests: a shed 503 costs the server next to nothing.
        while counts["sent"] - counts["shed"] < max_requests and time.perf_counter() < stop_at:
            counts["sent"] += 1
            body, boundary = bodies[i % len(bodies)]
            i += concurrency
            started = time.perf_counter()
            try:
                status = await asyncio.wait_for(conn.post(
                    "/identify", body, f"multipart/form-data; boundary={boundary}"), 60)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                status = -1
                conn.close()
            if status == 200:
                latencies.append((time.perf_counter() - started) * 1e3)
                counts["ok"] += 1
            elif status == 503:
                counts["shed"] += 1
                await asyncio.sleep(0.05)  # a polite client honours Retry-After, briefly
            else:
                counts["errors"] += 1
        conn.close()

    began = time.perf_counter()
    await asyncio.gather(*(client_loop(w) for w in range(concurrency)))
    wall = time.perf_counter() - began
    pct = np.percentile(latencies, [50, 95, 99]) if latencies else [float("nan")] * 3
    return Step(concurrency, counts["sent"], counts["ok"], counts["shed"], counts["errors"],
                wall, float(pct[0]), float(pct[1]), float(pct[2]), rss_mb(pid))


def pick_model(arg: Path | None, tmp: Path) -> Path:
    if arg is not None:
        return arg
    if BUNDLED.is_file():
        return BUNDLED
    return build_tiny_model(tmp / "tiny.onnx")


def report(args: argparse.Namespace, model: Path, albums: int, source: str, steps: list[Step],
           env: dict[str, str], idle_rss: float, load_at_start: float) -> str:
    info = ModelInfo.for_model(model)
    lines = [
        "# /identify load benchmark", "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on "
        f"{platform.machine()}, {os.cpu_count()} host CPUs, {available_cpus()} usable, "
        f"Python {platform.python_version()}; client and server share the machine (loopback); "
        f"1-min load average at start {load_at_start:.1f} (other work was running).",
        f"Catalog: {albums} albums ({source}). Model: {model.name} ({info.version}, "
        f"{info.channels}ch {info.input_size}px). Server settings: {env or 'defaults'}.",
        f"Each step: at most {args.step_requests} requests answered (503s not counted) or "
        f"{args.step_seconds:g} s. `requests` counts every request sent, 503s included. "
        "Throughput counts 200s per second; latency is client wall time of 200s; errors are "
        "responses other than 200 and 503 (must be 0); 503s are load shed with Retry-After "
        f"(max_inflight {env.get('CRATEWATCH_MAX_INFLIGHT', '32 (default)')}). "
        f"Server RSS after loading: {idle_rss:.0f} MB.", "",
        "| clients | requests | throughput (req/s) | p50 ms | p95 ms | p99 ms | errors | 503 shed "
        "| server RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
        *(s.row() for s in steps), "",
        "Command: `.venv/bin/python benchmarks/load.py " + " ".join(sys.argv[1:]) + "`", "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--albums", type=int, default=1000)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--step-seconds", type=float, default=15.0)
    parser.add_argument("--step-requests", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=64)
    parser.add_argument("--threads", type=int, help="CRATEWATCH_THREADS (default: service's)")
    parser.add_argument("--max-inflight", type=int, help="CRATEWATCH_MAX_INFLIGHT")
    parser.add_argument("--no-shared", action="store_true", help="always generate covers")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "reports" / "load.md")
    args = parser.parse_args(argv)

    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cratewatch-load-") as tmp_name:
        tmp = Path(tmp_name)
        model = pick_model(args.model, tmp)
        shared = None if args.no_shared else shared_covers()
        if shared is not None:
            catalog, source = shared, "shared covers"
        else:
            catalog, source = tmp / "catalog", "generated covers"
            write_demo_catalog(catalog, n_albums=args.albums, n_crops=0, seed=11)
        images = catalog_images(catalog)
        env = {"CRATEWATCH_LOG_LEVEL": "WARNING"}
        if args.threads:
            env["CRATEWATCH_THREADS"] = str(args.threads)
        if args.max_inflight:
            env["CRATEWATCH_MAX_INFLIGHT"] = str(args.max_inflight)
        server = LiveServer(catalog, tmp / "data", model, tmp / "logs", env=env)
        if not args.threads:  # LiveServer pins 1 ORT thread for tests; here the service decides
            server.env.pop("CRATEWATCH_THREADS", None)
        try:
            server.start(timeout_s=1800)
            topped = top_up(server.url, len(images), args.albums)
            if topped:
                source += f" + {topped} enrolled generated covers"
            assert server.proc is not None
            queries = make_queries(images, args.queries)
            asyncio.run(run_step(server.url, queries, 2, 20, 30, server.proc.pid))  # warm-up
            idle = rss_mb(server.proc.pid)
            steps = []
            for c in args.concurrency:
                step = asyncio.run(run_step(server.url, queries, c, args.step_requests,
                                            args.step_seconds, server.proc.pid))
                print(step.row(), flush=True)
                steps.append(step)
            total = httpx.get(f"{server.url}/catalog?limit=1", timeout=30).json()["total"]
        finally:
            server.stop()
        shown_env = {k: v for k, v in env.items() if k != "CRATEWATCH_LOG_LEVEL"}
        text = report(args, model, total, source, steps, shown_env, idle, load_at_start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 1 if any(s.errors for s in steps) else 0


if __name__ == "__main__":
    sys.exit(main())
