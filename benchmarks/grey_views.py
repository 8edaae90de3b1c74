"""Cost of the catalog's grey views (RGB models): startup, memory, cache size, query overhead.

    PYTHONPATH=. .venv/bin/python benchmarks/grey_views.py \
        --model /work/runs/final/lite0-pre-wide-sh/fp32/m.onnx \
        --catalog runs/stress/catalog --features-from runs/stress/data

Starts ``cratewatch serve`` (real subprocess) on the catalog with ``GREY_VIEWS`` off, then on,
each time in a fresh data dir seeded with a copy of ``--features-from``'s local features and
filled descriptor index (so only embeddings are computed cold). Reports the cold start
(every embedding computed), the warm restart (nothing recomputed), RSS once ready, the
embedding cache's size, and the median time of ``service.preprocess.is_grey`` on the
``--queries`` crops. Writes benchmarks/reports/grey-views-sizing.md.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from service.preprocess import is_grey
from service.testing.server import LiveServer, rss_mb

ROOT = Path(__file__).resolve().parents[1]
SEED = ("features.sqlite3", "descriptors-*")


def seeded_data(source: Path, data: Path) -> None:
    data.mkdir(parents=True)
    for pattern in SEED:
        for f in source.glob(pattern):
            shutil.copy2(f, data / f.name)


def measure(grey: str, args: argparse.Namespace, work: Path) -> dict[str, float | str]:
    data = work / f"data-{grey}"
    seeded_data(args.features_from, data)
    env = {"CRATEWATCH_THREADS": str(args.threads), "CRATEWATCH_GREY_VIEWS": grey}
    server = LiveServer(args.catalog, data, args.model, work / f"logs-{grey}", env=env)
    server.start(timeout_s=7200)
    cold = server.wait_ready()
    server.stop()
    t0 = time.perf_counter()
    server.start(wait_ready=False)
    warm = server.wait_ready(timeout_s=3600)
    wall = time.perf_counter() - t0
    assert server.proc is not None
    rss = rss_mb(server.proc.pid)
    server.stop()
    return {"grey_views": grey, "albums": str(cold["searchable"]),
            "grey_index": str(cold.get("grey_views", "-")),
            "cold_s": float(str(cold["load_seconds"])), "embedded": str(cold["embedded"]),
            "warm_s": float(str(warm["load_seconds"])), "warm_embedded": str(warm["embedded"]),
            "wall_s": wall, "rss_mb": rss,
            "cache_mb": (data / "embeddings.sqlite3").stat().st_size / 2**20}


def classify_ms(queries: Path, n: int) -> tuple[float, int]:
    """Median ms of is_grey per crop (each crop decoded first, as the service has it)."""
    rows = list(csv.DictReader((queries / "queries.csv").open()))[:n]
    times = []
    for r in rows:
        with Image.open(queries / r["path"]) as im:
            img = im.convert("RGB")
        t0 = time.perf_counter()
        is_grey(img)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times)), len(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="an RGB model (channels 3)")
    ap.add_argument("--catalog", type=Path, default=ROOT / "runs/stress/catalog")
    ap.add_argument("--features-from", type=Path, default=ROOT / "runs/stress/data")
    ap.add_argument("--queries", type=Path, default=Path("/work/runs/ood/ood-test"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/reports/grey-views-sizing.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(g, args, Path(tmp)) for g in ("false", "true")]
    ms, n = classify_ms(args.queries, 1000)
    cols = ["grey_views", "albums", "grey_index", "cold_s", "embedded", "warm_s",
            "warm_embedded", "wall_s", "rss_mb", "cache_mb"]
    lines = [f"# Grey views: cost (`{args.model}`, catalog `{args.catalog}`)", "",
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, THREADS={args.threads}, "
             "shared machine. cold_s / warm_s: the engine's load (first start: every embedding "
             "computed, local features from the seeded copy; restart: nothing recomputed); "
             "wall_s: process start to /readyz 200 on the restart; rss_mb once ready after it.",
             "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c])
                                       for c in cols) + " |")
    lines += ["", f"`is_grey` per query crop: median {ms:.3f} ms over {n} crops of "
              f"`{args.queries}`."]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
