"""Unusual-but-valid images decode to the same picture; hostile ones are rejected early."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.imaging import ImageRejected, decode_image
from service.testing.images import png_with_declared_size


def _cover(catalog_dir: Path) -> Image.Image:
    return Image.open(catalog_dir / "images" / "alb-004.png").convert("RGB")


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _gray(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L"), dtype=np.float32)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "TIFF", "BMP"])
def test_formats_decode(catalog_dir: Path, fmt: str) -> None:
    cover = _cover(catalog_dir)
    img, _ = decode_image(_encode(cover, fmt), 50_000_000)
    assert img.mode in ("RGB", "L") and img.size == cover.size
    assert np.abs(_gray(img) - _gray(cover)).mean() < 12


def test_cmyk_sixteen_bit_and_alpha_are_normalised(catalog_dir: Path) -> None:
    cover = _cover(catalog_dir)
    cmyk, _ = decode_image(_encode(cover.convert("CMYK"), "JPEG", quality=95), 10**8)
    assert cmyk.mode == "RGB" and np.abs(_gray(cmyk) - _gray(cover)).mean() < 12
    wide = Image.fromarray(_gray(cover).astype(np.uint16) * 257)
    deep, _ = decode_image(_encode(wide, "PNG"), 10**8)
    # a plain convert("L") would clip 16-bit data to white; the decoder rescales instead
    assert deep.mode == "L" and np.abs(_gray(deep) - _gray(cover)).mean() < 2
    rgba = cover.convert("RGBA")
    assert decode_image(_encode(rgba, "PNG"), 10**8)[0].mode == "RGB"
    assert decode_image(_encode(cover.convert("P"), "PNG"), 10**8)[0].mode == "RGB"


def test_exif_rotated_upload_is_turned_upright(client: TestClient, catalog_dir: Path) -> None:
    cover = _cover(catalog_dir)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view": the pixels are stored turned the other way
    stored = cover.transpose(Image.Transpose.ROTATE_90)
    data = _encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    upright, _ = decode_image(data, 10**8)
    assert np.abs(_gray(upright) - _gray(cover)).mean() < 12
    r = client.post("/identify", files={"image": ("r.jpg", data, "image/jpeg")})
    assert r.json()["matches"][0]["album_id"] == "alb-004"


def test_pixel_limit_is_checked_on_the_header() -> None:
    with pytest.raises(ImageRejected, match="pixel limit"):
        decode_image(png_with_declared_size(5000, 5000), max_pixels=1_000_000)
    with pytest.raises(ImageRejected):
        decode_image(png_with_declared_size(40_000, 40_000), max_pixels=50_000_000)
