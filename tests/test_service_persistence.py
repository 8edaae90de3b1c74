"""Restarts: embedding cache hits, deletes that stay deleted, and the data dir swept at startup."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from service.config import Settings
from service.testing.images import new_cover_png
from tests.conftest import app_client


def _file(data: bytes) -> dict[str, tuple[str, bytes, str]]:
    return {"image": ("x.png", data, "image/png")}


def test_restart_embeds_only_new_or_changed_images(
    make_settings: Callable[..., Settings], catalog_dir: Path, tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog"
    shutil.copytree(catalog_dir, catalog)
    settings = make_settings(catalog=catalog)
    with app_client(settings) as c:
        stats = c.get("/readyz").json()
        assert (stats["embedded"], stats["cached"]) == (30, 0)
        cover = new_cover_png(20)
        assert c.post("/catalog/add", files=_file(cover),
                      data={"artist": "a", "title": "t", "album_id": "enrolled-1"}
                      ).status_code == 201
    with app_client(settings) as c:
        stats = c.get("/readyz").json()
        assert (stats["albums"], stats["embedded"], stats["cached"]) == (31, 0, 31)
        assert c.post("/identify", files=_file(cover)).json()["matches"][0]["album_id"] == (
            "enrolled-1")
    changed = catalog / "images" / "alb-002.png"
    Image.open(changed).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(changed)
    with app_client(settings) as c:
        stats = c.get("/readyz").json()
        assert (stats["embedded"], stats["cached"]) == (1, 30)
        top = c.post("/identify", files=_file(changed.read_bytes())).json()["matches"][0]
        assert top["album_id"] == "alb-002" and top["score"] > 0.999


def test_deletes_survive_restart(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    cover = new_cover_png(21)
    with app_client(settings) as c:
        assert c.post("/catalog/add", files=_file(cover),
                      data={"artist": "a", "title": "t", "album_id": "gone"}).status_code == 201
        assert c.delete("/catalog/gone").status_code == 204
        assert c.delete("/catalog/alb-010").status_code == 204
    assert list((settings.data / "images").iterdir()) == []
    with app_client(settings) as c:
        assert c.get("/catalog/gone").status_code == 404
        assert c.get("/catalog/alb-010").status_code == 404
        assert c.get("/catalog").json()["total"] == 29
        ids = [m["album_id"] for m in c.post("/identify?k=50", files=_file(cover)).json()[
            "matches"]]
        assert "gone" not in ids and "alb-010" not in ids
        # a deleted catalog id can be enrolled again
        assert c.post("/catalog/add", files=_file(cover),
                      data={"artist": "a", "title": "t", "album_id": "alb-010"}
                      ).status_code == 201


def test_startup_sweeps_temp_files_and_orphans(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    with app_client(settings) as c:
        assert c.post("/catalog/add", files=_file(new_cover_png(22)),
                      data={"artist": "a", "title": "t", "album_id": "kept"}).status_code == 201
    images = settings.data / "images"
    (images / ".tmp-deadbeef").write_bytes(b"half written")
    (images / "orphan.png").write_bytes(new_cover_png(23))  # a kill between rename and commit
    with app_client(settings) as c:
        assert sorted(p.name for p in images.iterdir()) == ["kept.png"]
        assert c.get("/catalog/kept").status_code == 200
        assert c.get("/catalog/orphan").status_code == 404
