"""CPU cost of the query's RootSIFT per working side (``LOCAL_QUERY_SIDE``), stress crops.

    PYTHONPATH=. .venv/bin/python benchmarks/query_sift.py --sides 320 288 256 224

CPU time (not wall time) of ``Extractor.query`` over a set's crops with one OpenCV thread, so
that a shared machine changes the absolute figures more than the ratios; rounds alternate the
sides. Accuracy per side comes from ``benchmarks/stress.py`` with the setting.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2

from benchmarks.stages import rows_of
from service.features import Extractor, FeatureConfig
from service.imaging import decode_image

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=ROOT / "runs" / "stress")
    ap.add_argument("--set", default="medium")
    ap.add_argument("--sides", type=int, nargs="+", default=[320, 288, 256, 224])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--report", type=Path, default=ROOT / "benchmarks/reports/query-sift.md")
    a = ap.parse_args()
    cv2.setNumThreads(1)
    images = [decode_image(r.path.read_bytes(), 10**8)[0] for r in rows_of(a.root, a.set, None)]
    extractors = {s: Extractor(FeatureConfig(query_side=s)) for s in a.sides}
    cpu = dict.fromkeys(a.sides, 0.0)
    for _ in range(a.rounds):
        for side, ex in extractors.items():
            c0 = time.process_time()
            for image in images:
                ex.query(image)
            cpu[side] += time.process_time() - c0
    base = cpu[a.sides[0]]
    lines = ["| query side | CPU ms per crop | vs first |", "|---:|---:|---:|"]
    lines += [f"| {s} | {cpu[s] / a.rounds / len(images) * 1e3:.2f} | {cpu[s] / base:.0%} |"
              for s in a.sides]
    print("\n".join(lines))
    a.report.parent.mkdir(parents=True, exist_ok=True)
    a.report.write_text(
        "# Query RootSIFT CPU per working side (benchmarks/query_sift.py)\n\n"
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {len(images)} "
        f"{a.set} crops x {a.rounds} rounds, one OpenCV thread, CPU time.\n\n"
        + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
