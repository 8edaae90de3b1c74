"""Where a model misses on an OOD query set: top-1 accuracy split by the generator's own
per-query factors (colour vs grey, occluders, background, tilt), for one or more models.

    PYTHONPATH=. .venv/bin/python benchmarks/ood_breakdown.py --queries /work/runs/ood/ood-test \
        --catalog ../shared/data/covers --distractors /work/runs/ood/distractors \
        --model models/cratewatch-embedder.onnx \
        --model /work/runs/final/lite0-pre-wide-sh/fp32/m.onnx

Ranks exactly as `cratewatch-train eval` does (``training.evaluate.evaluate``) and writes a
markdown report (default benchmarks/reports/ood-breakdown.md; the committed one is
ood-breakdown-medium.md).
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

from training.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[1]


def _tilt_bin(row: dict[str, str]) -> str:
    tilt = max(abs(float(row["yaw"])), abs(float(row["pitch"])))
    return "<10" if tilt < 10 else "10-20" if tilt < 20 else ">=20"


# factor name -> how to read it from a queries.csv row of training/ood
FACTORS = {
    "mode": lambda r: r["mode"],
    "occluders": lambda r: r["occluders"] or "none",
    "background": lambda r: r["background"],
    "tilt (max |yaw|,|pitch|)": _tilt_bin,
}


def breakdown(hits: list[bool], meta: list[dict[str, str]], level: str
              ) -> dict[str, dict[str, tuple[int, int]]]:
    """factor -> value -> (hits, n), over the queries of ``level`` (or all)."""
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for name, read in FACTORS.items():
        acc: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for hit, row in zip(hits, meta, strict=True):
            if level in ("all", row["level"]):
                cell = acc[read(row)]
                cell[0] += int(hit)
                cell[1] += 1
        out[name] = {k: (v[0], v[1]) for k, v in sorted(acc.items())}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--queries", type=Path, required=True)
    p.add_argument("--catalog", type=Path, required=True)
    p.add_argument("--distractors", type=Path)
    p.add_argument("--model", type=Path, action="append", required=True)
    p.add_argument("--level", default="medium", help="easy | medium | hard | all")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "reports" / "ood-breakdown.md")
    args = p.parse_args()
    with (args.queries / "queries.csv").open(newline="") as fh:
        meta = list(csv.DictReader(fh))
    tables = {}
    for model in args.model:
        res = evaluate(model, args.catalog, args.queries, distractors=args.distractors)
        hits = [bool(r) and r[0] == q.album_id for r, q in zip(res.ranked, res.rows, strict=True)]
        tables[model] = breakdown(hits, meta, args.level)
    lines = [f"# OOD breakdown: top-1 accuracy on `{args.queries}` ({args.level} crops)", "",
             "Catalog: " + str(args.catalog) + (f" + {args.distractors}" if args.distractors
                                                 else ""), "",
             "Models: " + ", ".join(f"({i + 1}) `{m}`" for i, m in enumerate(args.model)), ""]
    first = tables[args.model[0]]
    for factor, values in first.items():
        lines += [f"| {factor} | n | " + " | ".join(f"P@1 ({i + 1})" for i in
                                                   range(len(args.model))) + " |",
                  "|---|---|" + "---|" * len(args.model)]
        for value, (_, n) in values.items():
            cells = [f"{tables[m][factor][value][0] / n:.3f}" for m in args.model]
            lines.append(f"| {value} | {n} | " + " | ".join(cells) + " |")
        lines.append("")
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
