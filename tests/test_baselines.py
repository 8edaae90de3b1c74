"""pHash and SIFT+RANSAC baselines on procedural covers; P@k against hand-computed cases."""

from __future__ import annotations

import csv
import importlib.util
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from training.baselines import (
    PHashBaseline,
    SiftBaseline,
    evaluate_baseline,
    phash_bits,
)
from training.evaluate import QueryRow, read_query_set, scores_per_level
from training.metrics import top_k, top_k_accuracy

N_COVERS = 5


def procedural_cover(seed: int, size: int = 256) -> Image.Image:
    """A textured, cover-like image: random blocks, discs, lines and glyphs (corner-rich)."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size, 3), rng.integers(0, 256, 3), dtype=np.uint8)
    for _ in range(30):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = (int(v) for v in rng.integers(0, size, 2))
        r = int(rng.integers(6, size // 5))
        kind = int(rng.integers(4))
        if kind == 0:
            cv2.rectangle(img, (x, y), (x + r, y + r // 2), colour, -1)
        elif kind == 1:
            cv2.circle(img, (x, y), r // 2, colour, -1)
        elif kind == 2:
            cv2.line(img, (x, y), tuple(int(v) for v in rng.integers(0, size, 2)), colour, 3)
        else:
            text = "".join(chr(int(c)) for c in rng.integers(65, 91, 3))
            cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.9, colour, 2)
    return Image.fromarray(img)


def rotated_scaled_cropped(img: Image.Image) -> Image.Image:
    """Rotate 15 degrees, shrink to 60 %, crop the middle 85 %: a small off-axis sighting."""
    arr = np.asarray(img)
    h, w = arr.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 15, 0.6)
    warped = cv2.warpAffine(arr, m, (w, h), borderMode=cv2.BORDER_CONSTANT, borderValue=(90,) * 3)
    c = int(0.075 * w)
    return Image.fromarray(warped[c : h - c, c : w - c])


@pytest.fixture(scope="module")
def covers() -> list[Image.Image]:
    return [procedural_cover(s) for s in range(N_COVERS)]


def _ids() -> list[str]:
    return [f"a{i}" for i in range(N_COVERS)]


@pytest.mark.parametrize("shortlist", [None, 2])
def test_sift_ranks_a_rotated_scaled_cropped_copy_first(
    covers: list[Image.Image], shortlist: int | None
) -> None:
    sift = SiftBaseline(_ids(), covers, shortlist=shortlist)
    for i, cover in enumerate(covers):
        ranking = sift.rank(rotated_scaled_cropped(cover))
        assert ranking[0] == f"a{i}"
        assert sorted(ranking) == sorted(_ids())


def test_sift_inliers_separate_match_from_non_match(covers: list[Image.Image]) -> None:
    sift = SiftBaseline(_ids(), covers, shortlist=None)
    for i in range(N_COVERS):
        q = sift.extractor.query(rotated_scaled_cropped(covers[i]))
        counts = [sift.verifier.match(q, c).inliers for c in sift.catalog]
        own = counts.pop(i)
        # shared glyphs and shapes give other covers a few chance inliers, never many
        assert own >= 40 and own > 3 * max(counts)


def test_phash_ranks_an_exact_resized_copy_first(covers: list[Image.Image]) -> None:
    ph = PHashBaseline(_ids(), covers)
    for i, cover in enumerate(covers):
        ranking = ph.rank(cover.resize((97, 97), Image.Resampling.BILINEAR).convert("L"))
        assert ranking[0] == f"a{i}"


def test_phash_bits_shape_and_balance(covers: list[Image.Image]) -> None:
    bits = phash_bits(covers[0])
    assert bits.shape == (64,) and bits.dtype == bool
    assert 16 <= bits.sum() <= 48  # thresholded at the median: about half set
    assert (phash_bits(covers[0]) != phash_bits(covers[1])).sum() > 10


def test_top_k_accuracy_hand_computed() -> None:
    rankings = [["a", "b", "c"], ["b", "a", "c"], ["c", "b", "a"], ["b", "c", "d"]]
    truth = ["a", "a", "a", "a"]
    assert top_k_accuracy(rankings, truth, 1) == 0.25  # only the first
    assert top_k_accuracy(rankings, truth, 2) == 0.5  # first two
    assert top_k_accuracy(rankings, truth, 3) == 0.75  # the last never has "a"
    assert top_k_accuracy(rankings, truth, 5) == 0.75
    assert math.isnan(top_k_accuracy([], [], 1))
    with pytest.raises(ValueError):
        top_k_accuracy(rankings, truth[:2], 1)


def test_brute_force_top_k_matches_hand_ranking() -> None:
    cat = np.eye(4, dtype=np.float32)
    q = np.array([[0.1, 0.9, 0.3, 0.0], [0.5, 0.5, 0.0, 0.2]], np.float32)
    assert top_k(q, cat, 3).tolist() == [[1, 2, 0], [0, 1, 3]]  # tie 0/1: catalog order
    assert top_k(q, cat, 9).shape == (2, 4)


def test_scores_by_level_hand_computed() -> None:
    items = [
        QueryRow(Path("q0"), "a", "easy"),
        QueryRow(Path("q1"), "b", "easy"),
        QueryRow(Path("q2"), "c", "hard"),
    ]
    rankings = [["a"] + list("bcdef"), list("cdefgb"), list("xyzwvc")]
    s = scores_per_level(rankings, items)
    assert s["easy"] == {"n": 2.0, "p@1": 0.5, "p@5": 0.5}  # "b" sits 6th for q1
    assert s["hard"] == {"n": 1.0, "p@1": 0.0, "p@5": 0.0}  # "c" sits 6th
    assert s["all"]["p@1"] == pytest.approx(1 / 3)


def _write_set(root: Path, covers: list[Image.Image]) -> tuple[Path, Path]:
    cat, qdir = root / "catalog", root / "queries"
    (cat / "images").mkdir(parents=True)
    qdir.mkdir()
    with (cat / "albums.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["album_id", "artist", "title", "image"])
        for i, cover in enumerate(covers):
            cover.save(cat / "images" / f"a{i}.jpg", quality=95)
            w.writerow([f"a{i}", "x", "y", f"images/a{i}.jpg"])
    with (qdir / "queries.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "album_id", "level"])
        for i, cover in enumerate(covers):
            rotated_scaled_cropped(cover).save(qdir / f"q{i}.png")
            w.writerow([f"q{i}.png", f"a{i}", "medium" if i % 2 else "easy"])
    return cat, qdir


def test_evaluate_baseline_end_to_end(tmp_path: Path, covers: list[Image.Image]) -> None:
    cat, qdir = _write_set(tmp_path, covers)
    assert [q.level for q in read_query_set(qdir)] == ["easy", "medium", "easy", "medium", "easy"]
    res = evaluate_baseline("sift", cat, qdir, shortlist=None)
    assert res.scores["all"] == {"n": 5.0, "p@1": 1.0, "p@5": 1.0}
    assert res.scores["medium"]["n"] == 2.0
    assert len(res.query_ms) == 5 and res.median_ms > 0
    ph = evaluate_baseline("phash", cat, qdir, limit=2)
    assert ph.scores["all"]["n"] == 2.0 and set(ph.scores) == {"easy", "medium", "all"}
    both = evaluate_baseline("phash", cat, [qdir, qdir], limit=1)  # limit applies per set
    assert both.scores["all"]["n"] == 2.0 and set(both.scores) == {"easy", "all"}


def test_read_queries_rejects_a_csv_without_ground_truth(tmp_path: Path) -> None:
    (tmp_path / "queries.csv").write_text("path,level\nq.png,easy\n")
    with pytest.raises(ValueError, match="album_id"):
        read_query_set(tmp_path)


def test_benchmark_script_writes_the_report(tmp_path: Path, covers: list[Image.Image]) -> None:
    cat, qdir = _write_set(tmp_path, covers)
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "baselines.py"
    spec = importlib.util.spec_from_file_location("bench_baselines", script)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "report.md"
    argv = ["--catalog", str(cat), "--queries", str(qdir), "--out", str(out), "--shortlist", "2"]
    bench.main([*argv, "--prep", "make the queries"])
    text = out.read_text()
    assert "| sift | all | 5 | 1.000 | 1.000 |" in text
    assert "| phash | easy | 3 |" in text and "| phash | medium | 2 |" in text
    assert "    make the queries\n" in text and "--prep" not in text
