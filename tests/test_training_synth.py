"""Synthetic CCTV queries: seeded, bounded occlusion, size and mode per level, the synth CLI."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service.testing.images import make_catalog
from tests.training_helpers import covers, write_hands
from training.cli import main
from training.recombine import recombine
from training.synth.camera import LEVELS
from training.synth.hands import load_hands
from training.synth.pipeline import QuerySynth, cover_array, make_queries


@pytest.fixture(scope="module")
def hands(tmp_path_factory: pytest.TempPathFactory) -> list:
    return load_hands(write_hands(tmp_path_factory.mktemp("hands")))


def test_hands_load_as_cutouts(hands: list) -> None:
    assert len(hands) == 3
    for h in hands:
        assert h.rgb.shape[:2] == h.alpha.shape
        assert 0.2 < h.alpha.mean() < 1.0  # cropped to the mask, not the whole photo


def test_same_seed_same_query_other_seed_differs(hands: list) -> None:
    synth = QuerySynth("medium", hands=hands)
    imgs = covers(3)
    a = make_queries(imgs, synth, seed=7)
    b = make_queries(imgs, synth, seed=7)
    c = make_queries(imgs, synth, seed=8)
    for (_, qa), (_, qb), (_, qc) in zip(a, b, c, strict=True):
        assert np.array_equal(np.asarray(qa.image), np.asarray(qb.image))
        assert qa.meta() == qb.meta()
        assert not np.array_equal(np.asarray(qa.image), np.asarray(qc.image))


@pytest.mark.parametrize("level", ["easy", "medium", "hard"])
def test_size_and_mode_per_level(level: str, hands: list) -> None:
    synth = QuerySynth(level, hands=hands)
    lo, hi = LEVELS[level].short_side
    for i, cover in enumerate(covers(4)):
        q = synth(cover, np.random.default_rng(i)).image
        assert q.mode == "L"
        assert lo <= min(q.size) <= hi
        # a loose crop around the sleeve: roughly square, never a sliver
        assert 0.6 < q.width / q.height < 1.6


def test_occluded_share_within_bounds(hands: list) -> None:
    params = LEVELS["medium"]
    synth = QuerySynth("medium", hands=hands)
    arr = cover_array(covers(1)[0])
    fracs = np.array([synth(arr, np.random.default_rng(i)).occluded_fraction for i in range(60)])
    occluded = fracs > 0
    # share of occluded queries near the level's setting (binomial, n=60)
    assert abs(occluded.mean() - params.occluded_prob) < 0.2
    # never far past the target range, and most reach its lower end
    assert fracs.max() <= params.occlusion[1] + 0.1 + 1e-9
    assert np.mean(fracs[occluded] >= params.occlusion[0] * 0.5) > 0.8


def test_no_occluders_without_a_chance() -> None:
    synth = QuerySynth("easy", hands=[])
    synth.params = dataclasses.replace(LEVELS["easy"], occluded_prob=0.0)
    q = synth(covers(1)[0], np.random.default_rng(0))
    assert q.occluded_fraction == 0.0 and q.occluders == []


def test_gligen_needs_a_model_dir() -> None:
    with pytest.raises(ValueError, match="gligen_model"):
        QuerySynth("medium", occluder="gligen")
    with pytest.raises(ValueError):
        QuerySynth("medium", occluder="inkblot")


def test_recombined_identities_are_new_and_reproducible() -> None:
    arrs = [cover_array(c, 64) for c in covers(5)]
    a, b = recombine(arrs, 12, seed=1), recombine(arrs, 12, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(x.shape == (64, 64, 3) for x in a)
    # none is a plain copy of a source cover
    assert not any(np.array_equal(x, s) for x in a for s in arrs)


def test_synth_cli_writes_queries_truth_and_sheet(tmp_path: Path) -> None:
    rows = make_catalog(tmp_path / "cat", n=4, size=96)
    hands = write_hands(tmp_path / "hands")
    out = tmp_path / "q"
    main(["synth", "--catalog", str(tmp_path / "cat"), "--out", str(out), "--n", "6",
          "--level", "all", "--hands", str(hands), "--seed", "3"])
    with (out / "queries.csv").open() as fh:
        got = list(csv.DictReader(fh))
    assert [r["album_id"] for r in got] == [rows[i % 4]["album_id"] for i in range(6)]
    assert [r["level"] for r in got] == ["easy", "medium", "hard"] * 2
    for r in got:
        with Image.open(out / r["path"]) as im:
            assert im.mode == "L" and min(im.size) == min(int(r["width"]), int(r["height"]))
    with Image.open(out / "contact_sheet.png") as sheet:
        assert sheet.width > 0


@pytest.mark.filterwarnings("ignore:Accessing config attribute:FutureWarning")
def test_gligen_backend_occludes_its_box(tmp_path: Path) -> None:
    """The real GLIGEN code path on the tiny random pipeline the GLIGEN tests build."""
    pytest.importorskip("diffusers")
    from tests.test_gligen import build_tiny_gligen
    from training.synth.gligen import GligenOccluder

    occluder = GligenOccluder(build_tiny_gligen(tmp_path / "gligen"), steps=2)
    synth = QuerySynth("medium", occluder="gligen", gligen=occluder, work_size=64)
    synth.params = dataclasses.replace(synth.params, occluded_prob=1.0)
    cover = cover_array(covers(1)[0], 64)
    a = synth(cover, np.random.default_rng(5))
    b = synth(cover, np.random.default_rng(5))
    assert a.occluders == ["gligen"] and 0.0 < a.occluded_fraction < 1.0
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))


def test_wide_synth_is_seeded_and_varied(hands: list) -> None:
    from training.synth.wide import WideSynth

    arrs = [cover_array(c, 96) for c in covers(4, size=96)]
    synth = WideSynth(hands, arrs)
    a = [synth(arrs[i % 4], np.random.default_rng(i)) for i in range(40)]
    b = [synth(arrs[i % 4], np.random.default_rng(i)) for i in range(40)]
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(np.asarray(x.image), np.asarray(y.image))
    modes = {q.image.mode for q in a}
    sizes = [min(q.image.size) for q in a]
    kinds = {k for q in a for k in q.occluders}
    assert modes == {"L", "RGB"}  # colour and grey inputs
    assert min(sizes) >= 48 and max(sizes) <= 224 and max(sizes) - min(sizes) > 60
    assert {"hand", "sticker", "sleeve", "finger"} <= kinds
    assert max(q.occluded_fraction for q in a) > 0.2


def test_train_views_wide_mix(hands: list) -> None:
    from service.modelinfo import ModelInfo
    from training.data import TrainViews

    info = ModelInfo(version="t", input_size=32, channels=3, mean=[0.5] * 3, std=[0.25] * 3,
                     embedding_dim=8)
    arrs = [cover_array(c, 64) for c in covers(3, size=64)]
    views = TrainViews(arrs, 4, info, hands, synth="wide")
    x, label = views[5]
    assert tuple(x.shape) == (3, 32, 32) and label == 1
    with pytest.raises(ValueError):
        TrainViews(arrs, 4, info, hands, synth="nope")


def test_wide_synth_factors_turn_off(hands: list) -> None:
    from training.synth.wide import FACTORS, WideSynth

    arrs = [cover_array(c, 96) for c in covers(4, size=96)]
    plain = WideSynth(hands, arrs, frozenset(FACTORS))
    qs = [plain(arrs[i % 4], np.random.default_rng(i)) for i in range(20)]
    assert {q.image.mode for q in qs} == {"L"}  # colour off: always grey
    assert all(q.occluders == [] and q.occluded_fraction == 0 for q in qs)
    with pytest.raises(ValueError):
        WideSynth(hands, arrs, frozenset({"nope"}))
