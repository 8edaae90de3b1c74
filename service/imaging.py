"""Safe image decoding for untrusted uploads: size limits first, then normalise the mode."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Decoded images keep a longer side of at least this (the model sees 128 px, re-rank 512 px):
# JPEGs decode at a reduced DCT scale (draft), other formats are reduced right after decoding,
# so a 15-megapixel upload holds ~1 megapixel through embed and re-rank, not 15.
DRAFT_SIDE = 1024
# The documented formats (README, API). Pillow reads dozens more (PPM, PCX, ICO, TGA, SGI, IM,
# DDS, QOI, XBM, ...): each is attack surface and none comes from a camera, so they are refused.
# MPO is how Pillow reports a JPEG with an extra (e.g. depth) picture, as phones write them.
FORMAT_SUFFIX = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif",
                 "BMP": "bmp", "TIFF": "tiff"}
DECODERS = ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"]
ACCEPTED = "JPEG, PNG, WebP, GIF, TIFF, BMP"


class ImageRejected(ValueError):
    """The upload is not an image we will decode (message is safe to show the client)."""


def decode_image(data: bytes, max_pixels: int) -> tuple[Image.Image, str]:
    """Decode ``data`` into an upright RGB or L image; returns (image, format suffix).

    Raises ImageRejected for empty, non-image, truncated, zero-sized or oversized images.
    """
    if not data:
        raise ImageRejected("empty upload")
    img = open_image(io.BytesIO(data), max_pixels)
    width, height = img.size
    suffix = FORMAT_SUFFIX.get(img.format or "", "img")
    if img.format in ("JPEG", "MPO"):
        # The box keeps the aspect ratio: a square box would keep 4x the pixels of a 4:3 photo.
        longest = max(width, height)
        box = (max(1, DRAFT_SIDE * width // longest), max(1, DRAFT_SIDE * height // longest))
        img.draft(img.mode if img.mode in ("L", "RGB") else None, box)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
            img = ImageOps.exif_transpose(img) or img
    except (OSError, SyntaxError, ValueError, EOFError, Warning) as exc:
        raise ImageRejected("truncated or corrupt image data") from exc
    except Image.DecompressionBombError as exc:
        raise ImageRejected("image dimensions exceed the pixel limit") from exc
    return _bounded(to_rgb_or_l(img)), suffix


def open_image(source: str | Path | IO[bytes], max_pixels: int) -> Image.Image:
    """Open ``source`` (header only, no pixel decoded) if it is in an accepted format and within
    ``max_pixels``; raises ImageRejected otherwise. Uploads, catalog rows and thumbnails all
    open images here, so that one set of checks guards every decode."""
    try:
        img: Image.Image = Image.open(source, formats=DECODERS)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"not an image in an accepted format ({ACCEPTED})") from exc
    except Image.DecompressionBombError as exc:  # not an OSError: Pillow's own ~179 MP cap
        raise ImageRejected("image dimensions exceed the pixel limit") from exc
    width, height = img.size
    problem = ("zero-sized image" if width <= 0 or height <= 0 else
               # Checked on the header, before a single pixel is decoded: the bomb defence.
               f"image is {width}x{height}: over the {max_pixels} pixel limit"
               if width * height > max_pixels else "")
    if problem:
        img.close()  # a file opened by path stays open until closed
        raise ImageRejected(problem)
    return img


def _bounded(img: Image.Image) -> Image.Image:
    """Reduce by a whole factor while the longer side stays >= DRAFT_SIDE (cheap box filter)."""
    factor = max(img.size) // DRAFT_SIDE
    return img.reduce(factor) if factor >= 2 else img


def to_rgb_or_l(img: Image.Image) -> Image.Image:
    """Normalise any mode (16-bit, float, CMYK, palette, alpha) to 8-bit RGB or L."""
    if img.mode in ("RGB", "L"):
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        # 16-bit data would clip to white under a plain convert("L"): map 0..65535 to 0..255;
        # 32-bit int and float data have no fixed range, so scale by their maximum.
        top = float(arr.max()) if arr.size else 0.0
        scale = 1 / 257 if img.mode.startswith("I;16") else (255.0 / top if top > 255 else 1.0)
        return Image.fromarray(np.clip(arr * scale, 0, 255).astype(np.uint8))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")
