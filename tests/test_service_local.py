"""Local-feature path: stored features survive restarts and new embedders, enrol/delete update
both paths, the descriptor vote finds a cover in a perspective-warped photo of it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from service.config import Settings
from service.demo import fake_album, make_cover
from service.engine import Engine
from service.features import Extractor, FeatureConfig
from service.testing.images import new_cover_png, png_bytes
from service.testing.tiny_model import build_tiny_model
from service.vote_index import DescriptorIndex
from tests.conftest import app_client


def _engine(client: TestClient) -> Engine:
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    return engine


def test_restart_and_new_embedder_recompute_no_features(
        make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    with app_client(make_settings()) as c:
        first = c.get("/readyz").json()
    assert first["features_extracted"] == 30 == first["local_covers"]
    assert first["descriptors"] > 30 * 50
    with app_client(make_settings()) as c:
        again = c.get("/readyz").json()
    assert again["features_extracted"] == 0 and again["embedded"] == 0
    assert again["descriptors"] == first["descriptors"]
    other = build_tiny_model(tmp_path / "other.onnx", version="tiny-test-2", seed=3)
    with app_client(make_settings(model=other)) as c:
        new_model = c.get("/readyz").json()
    assert new_model["embedded"] == 30 and new_model["features_extracted"] == 0


def test_enrol_and_delete_update_both_paths(make_settings: Callable[..., Settings]) -> None:
    data = new_cover_png(42, size=256)
    with app_client(make_settings()) as c:
        engine = _engine(c)
        before = engine.catalog.descriptors.ntotal
        r = c.post("/catalog/add", files={"image": ("n.png", data)},
                   data={"artist": "a", "title": "t", "album_id": "new-1"})
        assert r.status_code == 201, r.text
        iid = engine.catalog.iid_of("new-1")
        assert iid is not None and iid in engine.catalog.features
        feats = engine.catalog.features[iid]
        assert engine.catalog.descriptors.ntotal == before + len(feats)
        assert _top_vote(engine, feats) == iid
        assert c.post("/identify", files={"image": ("q.png", data)}).json()["identified"] \
            == "new-1"
        assert c.delete("/catalog/new-1").status_code == 204
        assert iid not in engine.catalog.features
        assert engine.catalog.descriptors.ntotal == before
        assert iid not in engine.catalog.descriptors.votes(feats)
    with app_client(make_settings()) as c:  # durable: the restart agrees with both paths
        stats = c.get("/readyz").json()
        assert stats["local_covers"] == stats["searchable"] == 30
        assert stats["features_extracted"] == 0


def _top_vote(engine: Engine, feats: object) -> int:
    votes = engine.catalog.descriptors.votes(feats)  # type: ignore[arg-type]
    return max(votes, key=lambda k: votes[k])


def _perspective_photo(cover: Image.Image, rng: np.random.Generator) -> np.ndarray:
    """The cover, tilted ~25 degrees, on a cluttered background, scaled down, slightly blurred."""
    src = np.asarray(cover.convert("RGB"))
    side = src.shape[0]
    out = 420
    bg = rng.integers(0, 255, size=(out // 20, out // 20, 3), dtype=np.uint8)
    canvas = cv2.resize(bg, (out, out), interpolation=cv2.INTER_NEAREST)
    corners = np.float32([[0, 0], [side, 0], [side, side], [0, side]])
    target = np.float32([[90, 60], [330, 100], [320, 350], [70, 370]])
    h = cv2.getPerspectiveTransform(corners, target)
    warped = cv2.warpPerspective(src, h, (out, out))
    mask = cv2.warpPerspective(np.full(src.shape[:2], 255, np.uint8), h, (out, out)) > 0
    canvas[mask] = warped[mask]
    small = cv2.resize(canvas, (300, 300), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small, (3, 3), 0.6)


def test_vote_path_finds_cover_in_perspective_photo() -> None:
    rng = np.random.default_rng(3)
    covers = [make_cover(rng, *fake_album(rng), size=320) for _ in range(40)]
    extractor = Extractor(FeatureConfig())
    index = DescriptorIndex(exact_limit=0, factory="IVF16,SQ8", nprobe=4)  # the IVF path
    index.build([(i, extractor.catalog(c)) for i, c in enumerate(covers)])
    assert index.kind == "IVF16,SQ8"
    top1 = top3 = 0
    for i in range(0, 40, 2):
        votes = index.votes(extractor.query(_perspective_photo(covers[i], rng)))
        order = sorted(votes, key=lambda k: -votes[k])
        top1 += order[0] == i
        top3 += i in order[:3]
    # Generated covers are flat shapes and one font: some have few distinctive keypoints, so
    # not every one wins outright (measured 18/20 first, 19/20 in the top 3 at this seed).
    assert top1 >= 16 and top3 >= 18, (top1, top3)


def test_identify_warped_photo_of_enrolled_cover(make_settings: Callable[..., Settings]) -> None:
    rng = np.random.default_rng(11)
    cover = make_cover(rng, *fake_album(rng), size=320)
    photo = Image.fromarray(_perspective_photo(cover, rng))
    with app_client(make_settings()) as c:
        assert c.post("/catalog/add", files={"image": ("c.png", png_bytes(cover))},
                      data={"artist": "a", "title": "t", "album_id": "warped"}).status_code == 201
        body = c.post("/identify", files={"image": ("p.png", png_bytes(photo))}).json()
    assert body["matches"][0]["album_id"] == "warped"
    assert body["decided_by"] == "verified" and body["matches"][0]["inliers"] >= 15


def test_trained_descriptor_index_is_kept_and_reused(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    covers = [make_cover(rng, *fake_album(rng), size=256) for _ in range(12)]
    extractor = Extractor(FeatureConfig())
    items = [(i, extractor.catalog(c)) for i, c in enumerate(covers)]
    path = tmp_path / "trained.faiss"
    first = DescriptorIndex("IVF8,SQ8", exact_limit=0, trained=path)
    first.build(items)
    assert path.is_file()
    stamp = path.stat().st_mtime_ns
    again = DescriptorIndex("IVF8,SQ8", exact_limit=0, trained=path)
    assert again._load_trained() is not None
    again.build(items)
    assert path.stat().st_mtime_ns == stamp  # not retrained
    query = extractor.query(covers[5])
    assert again.votes(query) == first.votes(query)
    path.write_bytes(b"damaged")  # derived data: retrained, not fatal
    DescriptorIndex("IVF8,SQ8", exact_limit=0, trained=path).build(items)
    assert path.stat().st_size > 100
