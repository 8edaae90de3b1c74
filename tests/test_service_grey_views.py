"""Grey views of the catalog for RGB models: the grey classifier, the second embedding index in
``AlbumIndex`` (load, enrol, delete, restart), grey queries ranked there; grey models unchanged.

A real tiny RGB ONNX model (``build_tiny_model(channels=3)``), real FAISS, the real app through
its lifespan, generated covers only.
"""

from __future__ import annotations

import io
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageFilter

from service.config import Settings
from service.preprocess import GREY_SPREAD, grey_rendition, is_grey
from service.testing.images import make_catalog, new_cover_png, png_bytes
from service.testing.tiny_model import build_tiny_model
from tests.conftest import add_album, app_client

TWIN_OF = "alb-003"  # "twin" is this cover's grey rendition, blurred, enrolled as a colour file


def _grey_png(data_or_image: bytes | Image.Image) -> bytes:
    """A grey camera's frame of a cover: its luminance only, as an 8-bit grey PNG."""
    img = (Image.open(io.BytesIO(data_or_image)) if isinstance(data_or_image, bytes)
           else data_or_image)
    return png_bytes(grey_rendition(img).convert("L"))


@pytest.fixture(scope="module")
def rgb_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("rgb") / "rgb.onnx", version="tiny-rgb-1",
                            channels=3)


@pytest.fixture(scope="module")
def twin_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 colour covers plus "twin": TWIN_OF's grey rendition, blurred, stored as RGB. A grey
    frame of TWIN_OF looks more like twin's colour file than like TWIN_OF's colour cover, but
    its grey view is TWIN_OF's grey view exactly: only the grey views rank TWIN_OF first."""
    root = tmp_path_factory.mktemp("twin")
    extra = [{"album_id": "twin", "artist": "t", "title": "t", "genre": "test",
              "image": "images/twin.png"}]
    rows = make_catalog(root, n=10, seed=5, extra_rows=extra)
    with Image.open(root / rows[3]["image"]) as cover:
        twin = grey_rendition(cover).filter(ImageFilter.GaussianBlur(4))
    twin.save(root / "images" / "twin.png")
    return root


def _settings(model: Path, catalog: Path, data: Path, **kw: Any) -> Settings:
    return Settings(catalog=catalog, data=data, model=model, threads=1, embed_batch_size=4,
                    **kw)


def _identify(c: TestClient, data: bytes) -> dict[str, Any]:
    r = c.post("/identify?k=3", files={"image": ("q.png", data, "image/png")})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _cache_rows(data: Path) -> int:
    with sqlite3.connect(data / "embeddings.sqlite3") as db:
        return int(db.execute("SELECT count(*) FROM embeddings").fetchone()[0])


# ---------------------------------------------------------------- the classifier
def test_grey_classifier_on_generated_colour_and_grey_images(tmp_path: Path) -> None:
    rows = make_catalog(tmp_path, n=6, seed=3)
    for row in rows:
        with Image.open(tmp_path / row["image"]) as cover:
            colour = cover.convert("RGB")
        grey = grey_rendition(colour)
        assert not is_grey(colour)
        assert is_grey(grey) and is_grey(grey.convert("L"))
        jpeg = io.BytesIO()  # a grey frame saved as a colour JPEG: chroma noise stays small
        grey.save(jpeg, format="JPEG", quality=60)
        assert is_grey(Image.open(jpeg))
    flat = np.full((40, 40, 3), 128, np.uint8)
    # Just under and just over the threshold: a faint tint over the whole crop.
    assert is_grey(Image.fromarray(flat + np.array([0, 0, int(GREY_SPREAD) - 1], np.uint8)))
    assert not is_grey(Image.fromarray(flat + np.array([0, 0, int(GREY_SPREAD) + 1], np.uint8)))


# ---------------------------------------------------------------- RGB model: grey views
def test_grey_crop_is_ranked_in_the_grey_views(rgb_model: Path, twin_catalog: Path,
                                               tmp_path: Path) -> None:
    query = _grey_png((twin_catalog / "images" / f"{TWIN_OF}.png").read_bytes())
    colour = (twin_catalog / "images" / "alb-005.png").read_bytes()
    with app_client(_settings(rgb_model, twin_catalog, tmp_path / "on", rerank=False)) as c:
        ready = c.get("/readyz").json()
        assert ready["grey_views"] == ready["searchable"] == 11
        got = _identify(c, query)
        assert got["view"] == "grey"
        assert [m["album_id"] for m in got["matches"][:2]] == [TWIN_OF, "twin"]
        assert got["matches"][0]["score"] > 0.9999  # its grey view is this very image
        plain = _identify(c, colour)
        assert plain["view"] == "colour" and plain["matches"][0]["album_id"] == "alb-005"
    off = _settings(rgb_model, twin_catalog, tmp_path / "off", rerank=False, grey_views=False)
    with app_client(off) as c:
        assert "grey_views" not in c.get("/readyz").json()
        got = _identify(c, query)
        assert got["view"] == "colour" and got["matches"][0]["album_id"] == "twin"
        assert _cache_rows(off.data) == 11  # no grey rendition embedded or cached


def test_enrol_delete_and_restart_keep_both_views(rgb_model: Path, catalog_dir: Path,
                                                  tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    shutil.copytree(catalog_dir, catalog)
    # First start without grey views: the cache holds the covers' own embeddings only.
    with app_client(_settings(rgb_model, catalog, tmp_path / "data", grey_views=False)) as c:
        assert c.get("/readyz").json()["embedded"] == 30
    settings = _settings(rgb_model, catalog, tmp_path / "data")
    cover = new_cover_png(7)
    with app_client(settings) as c:
        ready = c.get("/readyz").json()
        # Grey views on: only the grey renditions are embedded (each image decoded once).
        assert (ready["embedded"], ready["grey_views"]) == (30, 30)
        assert _cache_rows(settings.data) == 60
        index = c.app.state.engine.catalog  # type: ignore[attr-defined]
        assert add_album(c, "enrolled-1", cover)[0] == 201
        assert index.grey.ntotal == index.vectors.ntotal == 31
        got = _identify(c, _grey_png(cover))
        assert got["view"] == "grey" and got["matches"][0]["album_id"] == "enrolled-1"
        assert got["matches"][0]["score"] > 0.9999
        assert c.delete("/catalog/alb-004").status_code == 204
        assert index.grey.ntotal == index.vectors.ntotal == 30
        gone = _identify(c, _grey_png((catalog / "images" / "alb-004.png").read_bytes()))
        assert "alb-004" not in [m["album_id"] for m in gone["matches"]]
    with app_client(settings) as c:  # restart: nothing recomputed, both views back
        ready = c.get("/readyz").json()
        assert (ready["embedded"], ready["cached"], ready["grey_views"]) == (0, 30, 30)
        got = _identify(c, _grey_png(cover))
        assert got["matches"][0]["album_id"] == "enrolled-1"
        assert got["matches"][0]["score"] > 0.9999
    assert _cache_rows(settings.data) == 62


def test_a_failed_enrolment_leaves_neither_view(rgb_model: Path, catalog_dir: Path,
                                                tmp_path: Path) -> None:
    from tests.test_integrity_enrol import write_locked

    settings = _settings(rgb_model, catalog_dir, tmp_path / "data")
    cover = new_cover_png(8)
    with app_client(settings) as c:
        index = c.app.state.engine.catalog  # type: ignore[attr-defined]
        with write_locked(settings.data / "albums.sqlite3"):  # the commit point fails: 503
            assert add_album(c, "locked-1", cover)[0] == 503
        assert index.grey.ntotal == index.vectors.ntotal == 30
        got = _identify(c, _grey_png(cover))
        assert got["view"] == "grey" and got["matches"][0]["score"] < 0.9999


def test_a_grey_model_keeps_no_grey_index(make_settings: Callable[..., Settings],
                                          catalog_dir: Path) -> None:
    settings = make_settings()
    with app_client(settings) as c:
        assert "grey_views" not in c.get("/readyz").json()
        assert c.app.state.engine.catalog.grey is None  # type: ignore[attr-defined]
        got = _identify(c, _grey_png((catalog_dir / "images" / "alb-002.png").read_bytes()))
        assert got["view"] == "colour" and got["matches"][0]["album_id"] == "alb-002"
    assert _cache_rows(settings.data) == 30


# ---------------------------------------------------------------- offline evaluation
def _query_set(root: Path, catalog: Path, picks: list[tuple[str, bool]]) -> Path:
    """queries.csv + images: each pick is (album id, as a grey camera frame)."""
    (root / "images").mkdir(parents=True)
    lines = ["path,album_id,level"]
    for n, (album_id, grey) in enumerate(picks):
        data = (catalog / "images" / f"{album_id}.png").read_bytes()
        (root / "images" / f"q{n}.png").write_bytes(_grey_png(data) if grey else data)
        lines.append(f"images/q{n}.png,{album_id},{'hard' if grey else 'easy'}")
    (root / "queries.csv").write_text("\n".join(lines) + "\n")
    return root


def test_offline_eval_ranks_like_the_service(rgb_model: Path, twin_catalog: Path,
                                             tmp_path: Path) -> None:
    from training.cli import main
    from training.evaluate import evaluate

    picks = [(TWIN_OF, True), ("alb-001", True), ("alb-005", False), ("alb-008", False)]
    queries = _query_set(tmp_path / "q", twin_catalog, picks)
    on = evaluate(rgb_model, twin_catalog, queries, threads=1)
    off = evaluate(rgb_model, twin_catalog, queries, threads=1, grey_views=False)
    assert on.grey == off.grey == [True, True, False, False]
    assert on.grey_views and not off.grey_views
    assert on.ranked[0][0] == TWIN_OF and off.ranked[0][0] == "twin"
    for grey_views, res in ((True, on), (False, off)):
        settings = _settings(rgb_model, twin_catalog, tmp_path / f"d{grey_views}", rerank=False,
                             grey_views=grey_views)
        with app_client(settings) as c:  # the service's embedding ranking, query by query
            served = [[m["album_id"] for m in c.post(
                "/identify?k=5", files={"image": ("q.png", (queries / f"images/q{n}.png")
                                        .read_bytes(), "image/png")}).json()["matches"]]
                for n in range(len(picks))]
        assert served == res.ranked
    main(["eval", "--model", str(rgb_model), "--catalog", str(twin_catalog), "--queries",
          str(queries), "--out", str(tmp_path / "rep"), "--threads", "1", "--grey-views", "off"])
    assert "Grey views: off" in (tmp_path / "rep" / "report.md").read_text()


def test_second_look_compares_a_grey_crop_with_grey_views(rgb_model: Path, catalog_dir: Path,
                                                         tmp_path: Path) -> None:
    """The rectified sleeve of a grey crop is scored against its cover's grey view."""
    query = _grey_png((catalog_dir / "images" / "alb-006.png").read_bytes())
    rect = {}
    for grey_views in (True, False):
        settings = _settings(rgb_model, catalog_dir, tmp_path / f"d{grey_views}",
                             grey_views=grey_views)
        with app_client(settings) as c:
            engine = c.app.state.engine  # type: ignore[attr-defined]
            res = engine.retrieve(query, 3, engine.calibration, always_second=True)
        assert res.grey is grey_views and res.matches[0].album.album_id == "alb-006"
        rect[grey_views] = res.matches[0].rect_cosine
    assert rect[True] > 0.95 > rect[False], rect
