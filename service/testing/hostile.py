"""The hostile image corpus, made by code at test time (nothing binary is committed).

``unusual_but_valid(cover)``: the same cover re-encoded in formats and modes a shop camera or a
phone may produce; each must decode to (nearly) the same picture and be identified, not rejected.
``malformed()``: bytes that are not a usable image; each must get a 4xx JSON error.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image

# EXIF orientation -> the transpose a viewer applies to show the picture upright.
# (ImageOps.exif_transpose applies exactly these.)
ORIENTATION_FIX = {6: Image.Transpose.ROTATE_270, 8: Image.Transpose.ROTATE_90}
# The inverse: how a camera stores pixels that carry that orientation tag.
ORIENTATION_STORE = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def _save(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def exif_rotated_jpeg(cover: Image.Image, orientation: int) -> bytes:
    """Pixels stored rotated, with the EXIF Orientation tag that turns them upright again."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = cover.convert("RGB").transpose(ORIENTATION_STORE[orientation])
    return _save(stored, "JPEG", quality=92, exif=exif.tobytes())


def png16(cover: Image.Image) -> bytes:
    """16-bit grayscale PNG (mode I;16): values spread over 0..65535."""
    gray = np.asarray(cover.convert("L"), dtype=np.uint16) * 257
    return _save(Image.fromarray(gray.astype("<u2")), "PNG")


def animated_gif(cover: Image.Image) -> bytes:
    """Two-frame GIF whose first frame is the cover (palette-quantised)."""
    frames = [cover.convert("RGB"), cover.convert("RGB").transpose(Image.Transpose.FLIP_TOP_BOTTOM)]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def unusual_but_valid(cover: Image.Image) -> dict[str, bytes]:
    """Name -> bytes of valid images of ``cover`` in unusual formats and modes."""
    rgb = cover.convert("RGB")
    return {
        "gif": _save(rgb, "GIF"),
        "gif-animated": animated_gif(rgb),
        "webp-lossy": _save(rgb, "WEBP", quality=90),
        "webp-lossless": _save(rgb, "WEBP", lossless=True),
        "tiff": _save(rgb, "TIFF"),
        "tiff-deflate": _save(rgb, "TIFF", compression="tiff_adobe_deflate"),
        "bmp": _save(rgb, "BMP"),
        "png-16bit-gray": png16(rgb),
        "png-rgba": _save(rgb.convert("RGBA"), "PNG"),
        "png-palette": _save(rgb.quantize(256), "PNG"),
        "jpeg-cmyk": _save(rgb.convert("CMYK"), "JPEG", quality=95),
        "jpeg-progressive": _save(rgb, "JPEG", quality=90, progressive=True),
        "jpeg-gray": _save(rgb.convert("L"), "JPEG", quality=92),
        "jpeg-exif-orientation-6": exif_rotated_jpeg(rgb, 6),
        "jpeg-exif-orientation-8": exif_rotated_jpeg(rgb, 8),
    }


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width x height`` but carries a few bytes of pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", zlib.compress(b"\x00" * 256)) + _chunk(b"IEND", b""))


def _a_jpeg() -> bytes:
    rng = np.random.default_rng(3)
    return _save(Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)), "JPEG")


def _a_png() -> bytes:
    rng = np.random.default_rng(4)
    return _save(Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)), "PNG")


MALFORMED: dict[str, Callable[[], bytes]] = {
    "zero-byte": lambda: b"",
    "truncated-jpeg-header": lambda: _a_jpeg()[:120],
    "truncated-jpeg-half": lambda: _a_jpeg()[: len(_a_jpeg()) // 2],
    "truncated-png-half": lambda: _a_png()[: len(_a_png()) // 2],
    "png-signature-only": lambda: b"\x89PNG\r\n\x1a\n",
    "png-declares-40000x40000": lambda: png_declaring(40_000, 40_000),
    "png-declares-0x0": lambda: png_declaring(0, 0),
    "jpeg-magic-then-garbage": lambda: b"\xff\xd8\xff\xe0" + b"\x00garbage" * 64,
    "svg": lambda: (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" '
                    b'width="100" height="100"><rect width="100" height="100"/></svg>'),
    "html": lambda: b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>",
    "plain-text": lambda: b"this is a photo of an album, honest",
    "json": lambda: b'{"image": "definitely"}',
    "pdf-magic": lambda: b"%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n",
    "random-bytes": lambda: np.random.default_rng(5).bytes(4096),
}


def malformed() -> dict[str, bytes]:
    """Name -> bytes that must be refused with a 4xx JSON error."""
    return {name: make() for name, make in MALFORMED.items()}


def real_pixel_bomb(side: int) -> bytes:
    """A fully valid, highly compressible PNG of ``side x side`` black pixels (a few KB)."""
    return _save(Image.new("L", (side, side)), "PNG", optimize=False)


def multipart(field: str, filename: str, data: bytes, content_type: str,
              boundary: str = "hostile") -> tuple[bytes, str]:
    """A one-file multipart body and its Content-Type header (for raw-socket uploads)."""
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n').encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), (
        f"multipart/form-data; boundary={boundary}")
