"""Evaluation through the service's embedder and FAISS index, on a tiny generated catalog."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from service.testing.images import make_catalog  # noqa: E402
from training.cli import main  # noqa: E402
from training.config import FitConfig, model_info  # noqa: E402
from training.export import export_onnx  # noqa: E402
from training.model import EmbeddingNet  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict[str, str]]]:
    root = tmp_path_factory.mktemp("ev")
    rows = make_catalog(root / "cat", n=8, size=96)
    torch.manual_seed(0)
    model_path = export_onnx(EmbeddingNet("tiny"), root / "m.onnx", 32)
    cfg = FitConfig(catalog=root, out=root, arch="tiny", input_size=32)
    model_info(cfg, "ev-1").write(model_path)
    return root, model_path, rows


def _queries_from(root: Path, rows: list[dict[str, str]], picks: list[tuple[int, str]]) -> Path:
    """A query set whose images are catalog images themselves (so the answer is certain)."""
    q = root / "q"
    (q / "images").mkdir(parents=True, exist_ok=True)
    with (q / "queries.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "album_id", "level"])
        for n, (i, level) in enumerate(picks):
            shutil.copy(root / "cat" / rows[i]["image"], q / "images" / f"{n}.png")
            w.writerow([f"images/{n}.png", rows[i]["album_id"], level])
    return q


def test_identical_images_rank_first_and_wrong_truth_scores_zero(
    setup: tuple[Path, Path, list[dict[str, str]]]
) -> None:
    from training.evaluate import evaluate

    root, model, rows = setup
    q = _queries_from(root, rows, [(0, "easy"), (3, "easy"), (5, "hard")])
    res = evaluate(model, root / "cat", q, threads=1)
    assert res.scores["easy"] == {"p@1": 1.0, "p@5": 1.0, "n": 2}
    assert res.scores["all"]["n"] == 3 and res.n_catalog == 8
    # lie about the truth of one query: it must count as a miss at rank 1
    text = (q / "queries.csv").read_text().replace(rows[5]["album_id"], rows[6]["album_id"])
    (q / "queries.csv").write_text(text)
    assert evaluate(model, root / "cat", q, threads=1).scores["hard"]["p@1"] == 0.0


def test_eval_cli_writes_report_scores_and_failure_sheet(
    setup: tuple[Path, Path, list[dict[str, str]]], tmp_path: Path
) -> None:
    root, model, _ = setup
    qdir = tmp_path / "syn"
    main(["synth", "--catalog", str(root / "cat"), "--out", str(qdir), "--n", "6",
          "--level", "all", "--seed", "1"])
    out = tmp_path / "rep"
    main(["eval", "--model", str(model), "--catalog", str(root / "cat"), "--queries", str(qdir),
          "--out", str(out), "--threads", "1"])
    scores = json.loads((out / "scores.json").read_text())
    assert [scores[k]["n"] for k in ("easy", "medium", "hard", "all")] == [2, 2, 2, 6]
    assert all(0.0 <= s["p@1"] <= s["p@5"] <= 1.0 for s in scores.values())
    assert "| medium | 2 |" in (out / "report.md").read_text()
    assert (out / "failures.png").exists()
    assert np.isfinite(scores["all"]["p@1"])


def test_multi_crop_finds_a_cover_pasted_into_a_loose_crop(
    setup: tuple[Path, Path, list[dict[str, str]]], tmp_path: Path
) -> None:
    """Multi-crop scoring: 'none' ranks like the FAISS path; a cover pasted at the centre of
    a much larger noisy frame is found by the centre sub-crops at least as well."""
    from PIL import Image

    from training.evaluate import evaluate
    from training.multicrop import sub_crop

    root, model, rows = setup
    q = _queries_from(root, rows, [(1, "easy"), (2, "easy"), (4, "hard")])
    plain = evaluate(model, root / "cat", q, threads=1)
    assert evaluate(model, root / "cat", q, 1, None, "none").ranked == plain.ranked
    rng = np.random.default_rng(0)
    for n in range(3):  # the cover at 65 % of the side, in the middle of clutter
        path = q / "images" / f"{n}.png"
        with Image.open(path) as im:
            cover = im.convert("RGB").resize((65, 65))
        frame = Image.fromarray((rng.random((100, 100, 3)) * 255).astype(np.uint8))
        frame.paste(cover, (18, 17))
        frame.save(path)
    loose = evaluate(model, root / "cat", q, threads=1)
    centre = evaluate(model, root / "cat", q, 1, None, "centre")
    assert centre.scores["all"]["p@1"] >= loose.scores["all"]["p@1"]
    assert centre.scores["all"]["p@1"] == 1.0  # the 0.65 sub-crop is the cover itself
    img = Image.new("RGB", (100, 80))
    assert sub_crop(img, 0.5, 1.0, 0.0).size == (50, 40)


def test_a_missing_or_empty_catalog_is_an_error_not_a_zero_score(
        setup: tuple[Path, Path, list[dict[str, str]]], tmp_path: Path) -> None:
    root, model_path, _ = setup
    from training.evaluate import evaluate

    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        evaluate(model_path, tmp_path / "typo", root / "cat")
    with pytest.raises(ValueError, match="no albums.csv and no cover images"):
        evaluate(model_path, tmp_path / "empty", root / "cat")
