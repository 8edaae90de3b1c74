"""Median ONNX Runtime latency of embedding one CCTV crop; writes benchmarks/reports/embed_speed.md.

    .venv/bin/python benchmarks/embed_speed.py [--model M.onnx ...] [--threads 2]

Times ``Embedder.embed_images([crop])`` (the service's preprocessing + ORT run + normalisation)
and ``embed_array`` (the ORT run alone) on a synthetic medium-level query, after warm-up.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from service.embedder import Embedder
from service.preprocess import batch_inputs
from training.paths import REPO_ROOT


def _crop(seed: int) -> Image.Image:
    """A 120x112 grey crop with structure (the size of a medium-level query)."""
    rng = np.random.default_rng(seed)
    arr = (rng.random((112, 120)) * 255).astype(np.uint8)
    return Image.fromarray(arr, "L")


def _median_ms(fn: object, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times)), float(np.percentile(times, 90))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", type=Path, nargs="+",
                   default=[REPO_ROOT / "models/cratewatch-embedder.onnx"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks/reports/embed_speed.md")
    a = p.parse_args(argv)
    crop = _crop(0)
    lines = ["# Embed speed: one crop, ONNX Runtime CPU", "",
             f"Command: `{' '.join(shlex.quote(x) for x in sys.argv)}`  ",
             f"Host: {platform.machine()}, {os.cpu_count()} CPUs visible, "
             f"intra-op threads {a.threads}, {a.runs} timed runs after 20 warm-up; "
             "CPU shared with other work while measured.", "",
             "| model | precision | size MB | embed_images median ms | p90 ms | "
             "ORT run only median ms |", "|---|---|---|---|---|---|"]
    for model in a.model:
        emb = Embedder(model, threads=a.threads)
        batch = batch_inputs([crop], emb.info)
        for _ in range(20):
            emb.embed_images([crop])
        full, p90 = _median_ms(lambda e=emb: e.embed_images([crop]), a.runs)
        run, _ = _median_ms(lambda e=emb, b=batch: e.embed_array(b), a.runs)
        prec = emb.info.extra.get("precision", "?")
        size = model.stat().st_size / 2**20
        name = model.resolve().relative_to(REPO_ROOT) if model.resolve().is_relative_to(
            REPO_ROOT) else model
        lines.append(f"| `{name}` | {prec} | {size:.1f} | {full:.2f} | {p90:.2f} | "
                     f"{run:.2f} |")
        print(lines[-1], flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
