"""Run the pHash and SIFT+RANSAC baselines on a query set; write benchmarks/reports/baselines.md.

    .venv/bin/python benchmarks/baselines.py --queries runs/queries-medium [--catalog DIR]

The catalog defaults to the shared covers (all 990: held-out albums plus distractors), the same
catalog the embedder is evaluated against. Per-query time covers ranking one decoded image
(feature extraction + search + verification), not file decoding.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from training.baselines import BaselineResult, evaluate_baseline
from training.paths import REPO_ROOT, require_shared


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--queries", type=Path, nargs="+", required=True, help="query set dir(s) with queries.csv"
    )
    p.add_argument("--catalog", type=Path, default=None, help="default: <shared>/covers")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks/reports/baselines.md")
    p.add_argument("--limit", type=int, default=None, help="first N queries of each set")
    p.add_argument("--threads", type=int, default=2, help="OpenCV threads")
    p.add_argument("--shortlist", type=int, default=20, help="SIFT covers verified by RANSAC")
    p.add_argument("--side", type=int, default=320, help="SIFT working size (longer side)")
    p.add_argument("--nfeatures", type=int, default=800, help="SIFT keypoints per image")
    p.add_argument("--only", choices=["phash", "sift"], default=None)
    p.add_argument(
        "--prep", action="append", default=[], help="command that made a query set (for the report)"
    )
    return p.parse_args(argv)


def _p90(xs: list[float]) -> float:
    return float(np.percentile(xs, 90)) if xs else float("nan")


def _table(results: list[BaselineResult]) -> list[str]:
    lines = [
        "| baseline | level | queries | P@1 | P@5 | median ms/query | p90 ms/query |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for level, s in r.scores.items():
            t = r.ms_for(level)
            ms = f"{statistics.median(t):.1f} | {_p90(t):.1f}" if t else "– | –"
            lines.append(
                f"| {r.name} | {level} | {int(s['n'])} | {s['p@1']:.3f} | {s['p@5']:.3f} | {ms} |"
            )
    return lines


def _own_args(argv: list[str]) -> list[str]:
    """The command line minus ``--prep CMD`` pairs (those are listed on their own)."""
    out, skip = [], False
    for x in argv:
        if skip or x == "--prep":
            skip = not skip
            continue
        out.append(x)
    return out


def _report(
    a: argparse.Namespace, argv: list[str], catalog: Path, results: list[BaselineResult]
) -> str:
    cmd = " ".join(
        shlex.quote(x) for x in [".venv/bin/python", "benchmarks/baselines.py", *_own_args(argv)]
    )
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        "# Baselines: perceptual hash and SIFT + RANSAC",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, "
        f"{cpus} CPUs visible, OpenCV {cv2.__version__} with {a.threads} threads.",
        f"Catalog: `{catalog}`; queries: " + ", ".join(f"`{q}`" for q in a.queries) + ".",
        "",
        *_table(results),
        "",
        "Catalog build (feature extraction for every cover): "
        + ", ".join(f"{r.name} {r.build_s:.1f} s" for r in results)
        + ".",
        "",
        "- **phash**: 64-bit DCT pHash of the grey image, catalog ranked by Hamming distance "
        "(ties in catalog order).",
        f"- **sift**: RootSIFT ({a.nfeatures} keypoints, longer side {a.side} px), a global FLANN "
        f"kd-tree votes for covers (Lowe ratio 0.8); the top {a.shortlist} are verified by "
        "ratio-test matching + RANSAC homography and ranked by inlier count, the rest by votes.",
        "- P@k: share of queries whose true album is in the first k results.",
        "- ms/query: ranking one decoded query image, file decoding excluded. The machine was "
        "shared with other work while measuring, so times are indicative.",
        "",
        "Reproduce:",
        "",
        *[f"    {c}" for c in a.prep],
        f"    {cmd}",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    a = _args(argv)
    cv2.setNumThreads(a.threads)
    catalog = a.catalog or require_shared("covers")
    runs: list[tuple[str, dict[str, object]]] = [
        ("phash", {}),
        ("sift", {"shortlist": a.shortlist, "side": a.side, "nfeatures": a.nfeatures}),
    ]
    results = []
    for name, kwargs in runs:
        if a.only and name != a.only:
            continue
        res = evaluate_baseline(name, catalog, a.queries, limit=a.limit, **kwargs)
        all_ = res.scores["all"]
        print(
            f"{name}: P@1 {all_['p@1']:.3f} P@5 {all_['p@5']:.3f} n={int(all_['n'])} "
            f"median {res.median_ms:.1f} ms/query, build {res.build_s:.1f} s",
            flush=True,
        )
        results.append(res)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(_report(a, argv, catalog, results))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
