"""training/ood: kept apart from the training synthesis (imports, hands), seeded, framing,
the `ood` / `ood-distractors` CLI in the query-set format, evaluation with distractors."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from service.testing.images import make_catalog
from tests.training_helpers import covers
from training.catalog import DEFAULT_SPLIT, split_albums
from training.cli import main
from training.evaluate import evaluate, read_query_set
from training.handsplit import EVAL_SUBJECTS, hand_images, pool_of, subject_of
from training.ood.generator import LEVELS, OODSynth
from training.ood.hands import load_eval_hands
from training.paths import REPO_ROOT, shared_data_dir
from training.synth.hands import load_hands

OOD_DIR = REPO_ROOT / "training" / "ood"
# subjects of both pools, named as the HGR files are
NAMES = ["training_1_P_hgr1_id01_1", "training_2_P_hgr1_id01_2", "training_0_A_hgr2B_id03_1",
         "training_1_P_hgr1_id07_1", "validation_0_A_hgr2B_id10_1", "training_3_P_hgr1_id08_2"]


def _write_named_hands(directory: Path) -> Path:
    (directory / "images").mkdir(parents=True)
    (directory / "masks").mkdir()
    for name in NAMES:
        img, mask = Image.new("RGB", (60, 90), (20, 40, 20)), Image.new("L", (60, 90), 0)
        for draw, fill in ((ImageDraw.Draw(img), (200, 150, 120)), (ImageDraw.Draw(mask), 255)):
            draw.ellipse([10, 10, 45, 45], fill=fill)
            draw.rectangle([20, 40, 35, 89], fill=fill)
        img.save(directory / "images" / f"{name}.jpg")
        mask.save(directory / "masks" / f"{name}.png")
    return directory


def test_ood_imports_nothing_from_training_synth() -> None:
    for path in OOD_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(m.startswith("training.synth") for m in mods), (path, mods)
    code = ("import sys, training.ood.cli, training.ood.generator; "
            "print([m for m in sys.modules if m.startswith('training.synth')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO_ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_subject_parsing_and_pools() -> None:
    assert subject_of("training_1_P_hgr1_id03_2.jpg") == "hgr1_id03"
    assert subject_of("validation_1_A_hgr2B_id10_1.jpg") == "hgr2b_id10"
    assert pool_of("training_1_P_hgr1_id07_1.jpg") == "eval"
    assert pool_of("training_1_P_hgr1_id01_1.jpg") == "train"


def test_eval_and_training_hands_are_disjoint_by_subject(tmp_path: Path) -> None:
    hands_dir = _write_named_hands(tmp_path / "hands")
    ev = {h.source for h in load_eval_hands(hands_dir)}
    tr = {h.source for h in load_hands(hands_dir)}  # what training/synth pastes
    assert ev and tr and not ev & tr
    assert ev | tr == {f"{n}.jpg" for n in NAMES}
    assert {subject_of(n) for n in ev} <= EVAL_SUBJECTS
    assert not {subject_of(n) for n in tr} & EVAL_SUBJECTS


@pytest.mark.shared
def test_shared_hands_split_by_subject() -> None:
    root = shared_data_dir()
    if root is None or not (root / "hands").is_dir():
        pytest.skip("needs ../shared/data/hands")
    ev, tr = hand_images(root / "hands", "eval"), hand_images(root / "hands", "train")
    assert len(ev) + len(tr) == len(list((root / "hands" / "images").glob("*.jpg")))
    assert {subject_of(p.name) for p in ev} == EVAL_SUBJECTS
    assert not {subject_of(p.name) for p in ev} & {subject_of(p.name) for p in tr}
    gen = {h.source for h in load_eval_hands(root / "hands")}
    assert gen and not gen & {h.source for h in load_hands(root / "hands")}


def test_seeded_and_framing(tmp_path: Path) -> None:
    hands = load_eval_hands(_write_named_hands(tmp_path / "hands"))
    imgs = covers(4, size=128)
    for level in LEVELS:
        tight, loose = OODSynth(level, "tight", hands), OODSynth(level, "loose", hands)
        for i, img in enumerate(imgs):
            a = tight(img, np.random.default_rng([5, i]))
            b = tight(img, np.random.default_rng([5, i]))
            assert np.array_equal(np.asarray(a.image), np.asarray(b.image)) and a.meta == b.meta
            lo, hi = LEVELS[level].short_side
            assert lo <= min(a.image.size) <= hi and a.image.mode in ("L", "RGB")
            assert a.meta["sleeve_area"] > 0.5
            share = loose(img, np.random.default_rng([6, i])).meta["sleeve_area"]
            assert 0.38 <= share <= 0.72
            assert abs(a.meta["yaw"]) <= LEVELS[level].max_angle


def test_default_split_keeps_test_and_carves_ood_val() -> None:
    ids = [f"a{i:04d}" for i in range(990)]
    d = DEFAULT_SPLIT
    new = split_albums(ids, d["n_test"], d["n_val"], d["seed"], d["n_ood_val"])
    old = split_albums(ids, 170, 50, 0)
    assert new["test"] == old["test"] and new["val"] == old["val"]
    assert len(new["ood_val"]) == 50 and set(new["ood_val"]) <= set(old["train"])
    parts = [set(new[k]) for k in ("test", "val", "ood_val", "train")]
    assert sum(map(len, parts)) == len(set().union(*parts)) == 990


def test_cli_presets_disjoint_and_eval_with_distractors(tmp_path: Path, tiny_model: Path) -> None:
    cat = tmp_path / "cat"
    rows = make_catalog(cat, n=12)
    ids = [r["album_id"] for r in rows]
    split = {"test": ids[:4], "val": ids[4:6], "ood_val": ids[6:8], "train": ids[8:]}
    (tmp_path / "split.json").write_text(json.dumps(split))
    hands = _write_named_hands(tmp_path / "hands")
    sets = {}
    for preset in ("ood-val", "ood-test"):
        out = tmp_path / preset
        main(["ood", "--catalog", str(cat), "--out", str(out), "--preset", preset, "--split",
              str(tmp_path / "split.json"), "--hands", str(hands), "--framing", "loose"])
        sets[preset] = read_query_set(out)
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["hands"] and all(pool_of(n) == "eval" for n in manifest["hands"])
    assert {r.album_id for r in sets["ood-val"]} == set(split["ood_val"])
    assert {r.album_id for r in sets["ood-test"]} == set(split["test"])
    assert len(sets["ood-test"]) == 4 * 3 * 2  # 2 per cover and level
    assert {r.level for r in sets["ood-test"]} == {"easy", "medium", "hard"}
    main(["ood-distractors", "--catalog", str(cat), "--split", str(tmp_path / "split.json"),
          "--out", str(tmp_path / "dis"), "--n", "6"])
    res = evaluate(tiny_model, cat, tmp_path / "ood-test", 1, tmp_path / "dis")
    assert res.n_catalog == 12 + 6
    assert res.scores["all"]["n"] == 24 and 0.0 <= res.scores["all"]["p@5"] <= 1.0
