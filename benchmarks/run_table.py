"""One markdown row per training run: its validation curve's best epoch and its final evaluation.

    PYTHONPATH=. .venv/bin/python benchmarks/run_table.py r18-wide-sh r50-wide-sh
    PYTHONPATH=. .venv/bin/python benchmarks/run_table.py abl-lite0-wide abl-lite0-classic ...

For the model card's "ResNet50 vs ResNet18" and ablation tables. Reads what the runs wrote,
recomputes nothing: ``<runs>/<run>/log.json`` (``fit``'s per-epoch log; the best epoch is the
one with the highest ``select``, as ``best.pt``) and, where ``training/final_eval.sh`` has run,
``<runs>/final/<run>/eval-<precision>/{ood-test,ood-test-loose,id-test}/scores.json``
(embedding only, 990 covers + 1,000 distractors). A missing piece prints as ``-``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

SETS = (("ood-test", "OOD-test {} P@1 / P@5"), ("ood-test-loose", "OOD loose {} P@1"),
        ("id-test", "ID {} P@1"))
LEVELS = ("easy", "medium", "hard", "all")


def best_epoch(log: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The logged epoch ``best.pt`` holds: the highest selection score, the earliest on ties."""
    return max(log, key=lambda r: (r["select"], -r["epoch"])) if log else None


def cell(scores_file: Path, level: str, with_p5: bool) -> str:
    if not scores_file.is_file():
        return "-"
    m = json.loads(scores_file.read_text())[level]
    return f"{m['p@1']:.3f} / {m['p@5']:.3f}" if with_p5 else f"{m['p@1']:.3f}"


def row(runs: Path, name: str, precision: str, level: str = "medium") -> str:
    log_file = runs / name / "log.json"
    log = json.loads(log_file.read_text()) if log_file.is_file() else []
    best = best_epoch(log)
    minutes = sum(r["epoch_s"] for r in log) / 60
    curve = (f"{len(log)} epochs, {minutes:.0f} min; best {int(best['epoch'])}: OOD-val "
             f"{best['ood_p1']:.3f}, medium {best['ood_medium_p1']:.3f}, loose "
             f"{best['ood_loose_p1']:.3f}" if best else "no log")
    evals = runs / "final" / name / f"eval-{precision}"
    cells = [cell(evals / s / "scores.json", level, i == 0) for i, (s, _) in enumerate(SETS)]
    return f"| {name} ({precision}) | {curve} | " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="run names under --root")
    ap.add_argument("--root", type=Path, default=Path("/work/runs"))
    ap.add_argument("--precision", default="int8", choices=("int8", "fp32"))
    ap.add_argument("--level", default="medium", choices=LEVELS, help="query level of the cells")
    a = ap.parse_args()
    print("| run | training (wall minutes incl. validation) | "
          + " | ".join(title.format(a.level) for _, title in SETS) + " |")
    print("|---|---|" + "---|" * len(SETS))
    for name in a.runs:
        print(row(a.root, name, a.precision, a.level))


if __name__ == "__main__":
    main()
