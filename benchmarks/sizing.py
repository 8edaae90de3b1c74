"""Sizing benchmark: server memory, startup time and data size against catalog size.

    .venv/bin/python benchmarks/sizing.py --albums 40 10000

Starts ``cratewatch serve`` (the bundled model unless --model) on generated catalogs of each
size, waits for /readyz (embeddings and local features of every cover ready), then reports RSS,
first-start (cold: everything computed) and cached-restart (warm: nothing recomputed) load
time (the engine's own, and process start to /readyz 200; where the restart's descriptor index
came from: ``loaded`` from the data dir, or ``built``), the data directory's size and
/identify p50/p99 for one client on CCTV-style crops of the catalog's covers. Writes
benchmarks/reports/sizing.md.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.identify import crops_for, drive
from service.testing.images import make_catalog
from service.testing.server import LiveServer, rss_mb

ROOT = Path(__file__).resolve().parents[1]



def dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def measure(n: int, model: Path, threads: int, work: Path, requests: int) -> str:
    catalog = work / f"cat-{n}"
    make_catalog(catalog, n=n, seed=7, size=256)
    server = LiveServer(catalog, work / f"data-{n}", model, work / "logs",
                        env={"CRATEWATCH_THREADS": str(threads)})
    server.start(timeout_s=7200)
    first = server.wait_ready()
    server.stop()
    t0 = time.perf_counter()  # process start to /readyz 200: what a rolling deploy waits
    server.start(wait_ready=False)
    again = server.wait_ready(timeout_s=3600)
    wall = time.perf_counter() - t0
    assert server.proc is not None
    rss_ready = rss_mb(server.proc.pid)
    crops = crops_for(catalog, 100)
    asyncio.run(drive(server.url, crops, 10, 1))  # warm-up
    lat, _, errors, _, _ = asyncio.run(drive(server.url, crops, requests, 1))
    rss_busy = rss_mb(server.proc.pid)
    server.stop()
    ms = np.array(lat) * 1000
    return (f"| {n} | {rss_ready:.0f} | {rss_busy:.0f} | {first['load_seconds']} | "
            f"{again['load_seconds']} | {wall:.2f} | {again.get('descriptor_index_from', '-')} | "
            f"{dir_mb(work / f'data-{n}'):.1f} | "
            f"{first.get('descriptors', '-')} | {np.percentile(ms, 50):.1f} | "
            f"{np.percentile(ms, 99):.1f} | {errors} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--albums", type=int, nargs="+", default=[40, 10_000])
    ap.add_argument("--model", type=Path, default=ROOT / "models/cratewatch-embedder.onnx")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--requests", type=int, default=200, help="/identify calls per size")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/reports/sizing.md")
    a = ap.parse_args()
    lines = ["# Sizing", "", f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
             f"Model `{a.model.name}`, {a.threads} ORT threads, default settings (local-feature "
             "path on), generated 256 px covers, CCTV-style crops of them (one client). The "
             "machine (2 CPUs) was shared with other work: times are indicative.", "",
             "| albums | RSS MB ready (restart) | RSS MB after queries | cold start s "
             "| warm restart s (load) | warm restart s (process to ready) | descriptor index "
             "| data dir MB | descriptors | p50 ms | p99 ms | errors |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for n in a.albums:
            line = measure(n, a.model, a.threads, Path(tmp), a.requests)
            print(line, flush=True)
            lines.append(line)
    lines += ["", f"Reproduce: `PYTHONPATH=. .venv/bin/python benchmarks/sizing.py --albums "
              f"{' '.join(map(str, a.albums))}`"]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
