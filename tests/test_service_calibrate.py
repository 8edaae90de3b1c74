"""`cratewatch calibrate` on the tiny test model: thresholds measured on crops of covers in and
NOT in a small generated catalog, written into its sidecar, then used by the service."""

from __future__ import annotations

import csv
import io
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service.calibrate import Sample, fit, rates
from service.cli import main as cli_main
from service.config import Settings
from service.decision import Calibration, gate_open
from service.demo import degrade, fake_album, make_cover
from service.modelinfo import ModelInfo
from tests.conftest import app_client


def _write_set(directory: Path, covers: list[tuple[str, Image.Image]], seed: int) -> Path:
    (directory / "images").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    with (directory / "queries.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "album_id", "level"])
        for i, (album_id, cover) in enumerate(covers):
            view = degrade(cover.convert("RGB").resize((384, 384)), rng)
            view.save(directory / "images" / f"q{i:03d}.jpg", quality=85)
            w.writerow([f"images/q{i:03d}.jpg", album_id, "medium"])
    return directory


def _strangers(n: int, seed: int) -> list[tuple[str, Image.Image]]:
    rng = np.random.default_rng(seed)
    return [(f"stranger-{i}", make_cover(rng, *fake_album(rng), 128)) for i in range(n)]


def _own(catalog_dir: Path, ids: range) -> list[tuple[str, Image.Image]]:
    return [(f"alb-{i:03d}", Image.open(catalog_dir / "images" / f"alb-{i:03d}.png"))
            for i in ids]


def test_fit_separates_known_from_unknown() -> None:
    right = [Sample("a", "a", 0.9, 0.3, [("a", 50, 0.6)]) for _ in range(50)]
    weak = [Sample("b", "c", 0.5, 0.01, [("b", 20, 0.4), ("c", 9, 0.2)]) for _ in range(30)]
    stranger = [Sample(None, "d", 0.55, 0.02, [("d", 14, 0.2)]) for _ in range(40)]
    cal = fit(right + weak + stranger, target_far=0.0)
    r = rates(right + weak + stranger, cal)
    assert r["unknown_accepted"] == 0.0 and r["known_wrong"] == 0.0
    assert r["known_correct"] == 1.0
    assert not gate_open(cal, 0.55, 0.02)  # the gate never opens where strangers score
    assert gate_open(cal, 0.9, 0.3)


def test_fit_open_set_and_wrong_answers_have_their_own_limits() -> None:
    strong = [Sample("a", "a", 0.5, 0.01, [("a", 20, 0.6)]) for _ in range(50)]
    weak = [Sample("e", "e", 0.5, 0.01, [("e", 10, 0.4)]) for _ in range(10)]
    confused = [Sample("b", "c", 0.5, 0.01, [("c", 10, 0.4)]) for _ in range(5)]
    stranger = [Sample(None, "d", 0.5, 0.01, [("d", 9, 0.1)]) for _ in range(40)]
    samples = strong + weak + confused + stranger
    strict = fit(samples, target_far=0.0)  # no wrong answer: the weak crops go too
    r = rates(samples, strict)
    assert r["known_correct"] == round(50 / 65, 4) and r["known_wrong"] == 0.0
    # 5 wrong of 65 in-catalog crops (7.7 %) allowed, still no stranger accepted.
    loose = fit(samples, target_far=0.0, target_wrong=0.08)
    r = rates(samples, loose)
    assert r["known_correct"] == round(60 / 65, 4) and r["unknown_accepted"] == 0.0
    assert r["known_wrong"] == round(5 / 65, 4)


def test_calibrate_tiny_model_then_open_set(make_settings: Callable[..., Settings],
                                            tiny_model: Path, catalog_dir: Path,
                                            tmp_path: Path) -> None:
    model = tmp_path / "model" / "tiny.onnx"
    model.parent.mkdir()
    shutil.copy(tiny_model, model)
    shutil.copy(tiny_model.with_suffix(".json"), model.with_suffix(".json"))
    known = _write_set(tmp_path / "known", _own(catalog_dir, range(0, 30, 2)), 1)
    unknown = _write_set(tmp_path / "unknown", _strangers(15, 1), 2)
    assert cli_main(["calibrate", "--catalog", str(catalog_dir), "--data",
                     str(tmp_path / "scratch"), "--model", str(model), "--known", str(known),
                     "--unknown", str(unknown), "--target-far", "0.0", "--write"]) == 0
    cal = ModelInfo.for_model(model).calibration
    assert isinstance(cal, Calibration)
    assert cal.measured["rates"]["unknown_accepted"] == 0.0  # type: ignore[index]
    # Not degenerate: a good share of in-catalog crops accepted. The random tiny model
    # identifies 7-8 of these 15 harsh crops (8 with queries at 320 px, 7 at 256 px); how well
    # the product does is the stress benchmark's figure, not this one's.
    assert cal.measured["rates"]["known_correct"] >= 0.4  # type: ignore[index]
    # What it measured with, so a service running other local features can say so.
    assert cal.measured["local_features"]["query_side"] == (  # type: ignore[index]
        make_settings().local_query_side)
    # The service reads the model's calibration: crops it has not seen, in and out of catalog.
    ids = range(1, 30, 6)
    with app_client(make_settings(model=model)) as c:
        own = [c.post("/identify", files={"image": ("q.jpg", _light(cover))}).json()
               for _, cover in _own(catalog_dir, ids)]
        cctv = [c.post("/identify", files={"image": ("q.jpg", _jpeg(cover, 5 + i))}).json()
                for i, (_, cover) in enumerate(_own(catalog_dir, ids))]
        out = [c.post("/identify", files={"image": ("q.jpg", _jpeg(cover, 50 + i))}).json()
               for i, (_, cover) in enumerate(_strangers(5, 99))]
    assert all(body["identified"] is None for body in out)
    assert [b["identified"] for b in own] == [f"alb-{i:03d}" for i in ids]
    assert all(0 < b["confidence"] <= 1 for b in own)
    # Harsh CCTV views: some are left unidentified, none is identified wrongly.
    assert all(b["identified"] in (None, f"alb-{i:03d}") for b, i in zip(cctv, ids, strict=True))


def test_settings_override_model_calibration(make_settings: Callable[..., Settings],
                                             tiny_model: Path, tmp_path: Path) -> None:
    model = tmp_path / "tiny.onnx"
    shutil.copy(tiny_model, model)
    info = ModelInfo.for_model(tiny_model)
    info.calibration = Calibration(accept_inliers=999)
    info.write(model)
    with app_client(make_settings(model=model)) as c:
        engine = c.app.state.engine  # type: ignore[attr-defined]
        assert engine.calibration.accept_inliers == 999
    with app_client(make_settings(model=model, accept_inliers=20)) as c:
        assert c.app.state.engine.calibration.accept_inliers == 20  # type: ignore[attr-defined]


def test_calibration_from_other_local_features_warns(
        make_settings: Callable[..., Settings], tiny_model: Path, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    model = tmp_path / "tiny.onnx"
    shutil.copy(tiny_model, model)
    info = ModelInfo.for_model(tiny_model)
    settings = make_settings(model=model, local_query_side=200)
    same = {"catalog": "rootsift-s320-n500-v1", "query_side": 200, "query_features": 500}
    for measured, warned in ((same, False), ({**same, "query_side": 320}, True)):
        info.calibration = Calibration(measured={"local_features": measured})
        info.write(model)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="service.engine"), app_client(settings):
            pass
        assert ("calibration was measured with local features" in caplog.text) is warned


def _jpeg(cover: Image.Image, seed: int) -> bytes:
    buf = io.BytesIO()
    degrade(cover.convert("RGB").resize((384, 384)), np.random.default_rng(seed)).save(
        buf, format="JPEG", quality=85)
    return buf.getvalue()


def _light(cover: Image.Image) -> bytes:
    """A mild view of the cover: smaller and JPEG-compressed."""
    buf = io.BytesIO()
    cover.convert("RGB").resize((100, 100)).save(buf, format="JPEG", quality=70)
    return buf.getvalue()
