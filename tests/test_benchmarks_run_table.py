"""benchmarks/run_table.py reads a run's log and final evaluation as fit and final_eval.sh wrote
them (generated files here; no training)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.run_table import best_epoch, row


def _epoch(n: int, select: float) -> dict[str, float]:
    return {"epoch": float(n), "epoch_s": 600.0, "select": select, "ood_p1": select,
            "ood_medium_p1": select + 0.1, "ood_loose_p1": select - 0.1}


def test_best_epoch_is_the_first_highest_selection_like_best_pt() -> None:
    log = [_epoch(1, 0.2), _epoch(2, 0.5), _epoch(3, 0.5), _epoch(4, 0.4)]
    assert best_epoch(log) == log[1]  # fit saves best.pt only on a strictly higher score
    assert best_epoch([]) is None


def test_row_reads_log_and_scores_and_marks_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "log.json").write_text(json.dumps([_epoch(1, 0.3), _epoch(2, 0.6)]))
    scores = tmp_path / "final" / "r" / "eval-int8" / "ood-test" / "scores.json"
    scores.parent.mkdir(parents=True)
    scores.write_text(json.dumps({"medium": {"p@1": 0.7, "p@5": 0.85, "n": 340}}))
    line = row(tmp_path, "r", "int8")
    assert "2 epochs, 20 min; best 2: OOD-val 0.600, medium 0.700, loose 0.500" in line
    assert line.endswith("| 0.700 / 0.850 | - | - |")  # loose and ID not evaluated yet
    assert "no log" in row(tmp_path, "absent", "int8")


def test_row_reports_the_level_asked_for(tmp_path: Path) -> None:
    scores = tmp_path / "final" / "r" / "eval-fp32" / "ood-test" / "scores.json"
    scores.parent.mkdir(parents=True)
    scores.write_text(json.dumps({"medium": {"p@1": 0.7, "p@5": 0.85},
                                  "all": {"p@1": 0.55, "p@5": 0.72}}))
    assert row(tmp_path, "r", "fp32", "all").endswith("| 0.550 / 0.720 | - | - |")
    assert row(tmp_path, "r", "fp32").endswith("| 0.700 / 0.850 | - | - |")
