"""Catalog and enrolled images the service must not decode (a pixel bomb, a header over
MAX_IMAGE_PIXELS, a format outside the accepted list) never stop it from loading, and their
thumbnails answer a JSON 404 instead of a 500 or an unchecked decode. Real files, real app."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from service.catalog import load_catalog
from service.config import Settings
from service.testing.images import make_catalog, new_cover_png, png_with_declared_size
from tests.conftest import add_album, app_client, top_album

# Pillow raises DecompressionBombError (not an OSError) at open above ~179 MP: 225 MP here.
BOMB_SIDE = 15_000
# Under Pillow's own limits, over the service's default MAX_IMAGE_PIXELS (50 MP): 81 MP.
OVER_LIMIT_SIDE = 9_000


def _ppm() -> bytes:
    """A valid image in a format Pillow reads but the service refuses (not in DECODERS)."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buf, format="PPM")
    return buf.getvalue()


def _hostile_catalog(directory: Path) -> list[dict[str, str]]:
    """Four good covers, then one row per image the service must refuse."""
    images = directory / "images"
    images.mkdir(parents=True)
    (images / "bomb.png").write_bytes(png_with_declared_size(BOMB_SIDE, BOMB_SIDE))
    (images / "big.png").write_bytes(png_with_declared_size(OVER_LIMIT_SIDE, OVER_LIMIT_SIDE))
    (images / "exotic.png").write_bytes(_ppm())  # the suffix lies; the format is what counts
    bad = [{"album_id": name, "artist": "a", "title": "t", "genre": "", "image":
            f"images/{name}.png"} for name in ("bomb", "big", "exotic")]
    return make_catalog(directory, n=4, extra_rows=bad)


def test_catalog_rows_use_the_upload_header_checks(tmp_path: Path) -> None:
    _hostile_catalog(tmp_path)
    report = load_catalog(tmp_path, max_pixels=50_000_000)
    assert [a.album_id for a in report.albums] == [f"alb-00{i}" for i in range(4)]
    reasons = dict(report.skipped)
    assert sorted(reasons) == [6, 7, 8]  # header line 1, good rows 2-5
    assert "pixel limit" in reasons[6] and "bomb.png" in reasons[6]
    assert f"{OVER_LIMIT_SIDE}x{OVER_LIMIT_SIDE}" in reasons[7]
    assert "accepted format" in reasons[8]


def test_hostile_catalog_rows_are_skipped_and_the_service_gets_ready(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog"
    _hostile_catalog(catalog)
    with app_client(make_settings(catalog=catalog)) as client:
        stats = client.get("/readyz").json()
        assert stats["status"] == "ready"
        assert (stats["albums"], stats["searchable"], stats["skipped_rows"]) == (4, 4, 3)
        assert stats["undecodable"] == 0
        cover = (catalog / "images" / "alb-002.png").read_bytes()
        assert top_album(client, cover) == "alb-002"
        for skipped in ("bomb", "big", "exotic"):
            r = client.get(f"/catalog/{skipped}/thumbnail")
            assert r.status_code == 404 and "not found" in r.json()["detail"]


def test_thumbnail_of_an_image_turned_hostile_is_a_json_404(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """A cover replaced after loading (the catalog is someone else's directory) is opened under
    the same format and pixel checks as an upload: a bomb was a 500, a PPM was decoded."""
    catalog = tmp_path / "catalog"
    make_catalog(catalog, n=4)
    with app_client(make_settings(catalog=catalog)) as client:
        assert client.get("/catalog/alb-000/thumbnail").status_code == 200
        (catalog / "images" / "alb-000.png").write_bytes(png_with_declared_size(BOMB_SIDE,
                                                                                BOMB_SIDE))
        (catalog / "images" / "alb-001.png").write_bytes(_ppm())
        for album_id, why in (("alb-000", "pixel limit"), ("alb-001", "accepted format")):
            r = client.get(f"/catalog/{album_id}/thumbnail", params={"size": 64})
            assert r.status_code == 404, r.text
            assert why in r.json()["detail"] and album_id in r.json()["detail"]
        assert client.get("/catalog/alb-002/thumbnail").status_code == 200


def test_thumbnail_obeys_a_lowered_pixel_limit(make_settings: Callable[..., Settings]) -> None:
    """An enrolled 256 px cover after a restart with MAX_IMAGE_PIXELS under 256x256: its
    thumbnail is refused, not decoded past the limit (it stays searchable from the embedding
    cache: it was accepted when enrolled)."""
    settings = make_settings()
    with app_client(settings) as client:
        assert add_album(client, "large", new_cover_png(700, size=256))[0] == 201
    # The catalog's own covers are 128 px (16384 pixels): they stay under this limit.
    lowered = settings.model_copy(update={"max_image_pixels": 20_000})
    with app_client(lowered) as client:
        r = client.get("/catalog/large/thumbnail")
        assert r.status_code == 404 and "20000 pixel limit" in r.json()["detail"]
        assert client.get("/catalog/alb-003/thumbnail").status_code == 200
