"""Procedural price stickers: a shape, a price, sometimes a barcode, pasted onto the sleeve."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from training.synth.blend import blend

_FILLS = [(255, 255, 255), (250, 230, 60), (255, 150, 40), (255, 120, 170), (140, 220, 120)]
_FONT_PATHS = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
]


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in _FONT_PATHS:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default()


def _price(rng: np.random.Generator) -> str:
    cur = str(rng.choice(["$", "£", "€", ""]))
    whole = int(rng.integers(1, 60))
    if rng.random() < 0.3:
        return f"{cur}{whole}"
    return f"{cur}{whole}.{int(rng.integers(0, 100)):02d}"


def make_sticker(rng: np.random.Generator, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw one sticker; return ``(rgb uint8 (h,w,3), alpha float32 (h,w))``."""
    fill = _FILLS[int(rng.integers(len(_FILLS)))]
    img = Image.new("RGB", (w, h), fill)
    mask = Image.new("L", (w, h), 0)
    shape = str(rng.choice(["rect", "round", "ellipse"]))
    md = ImageDraw.Draw(mask)
    if shape == "rect":
        md.rectangle([0, 0, w - 1, h - 1], fill=255)
    elif shape == "round":
        md.rounded_rectangle([0, 0, w - 1, h - 1], radius=max(1, min(w, h) // 5), fill=255)
    else:
        md.ellipse([0, 0, w - 1, h - 1], fill=255)
    draw = ImageDraw.Draw(img)
    ink = (int(rng.integers(0, 60)), int(rng.integers(0, 60)), int(rng.integers(0, 90)))
    text_h = max(6, int(h * (0.35 if rng.random() < 0.5 else 0.5)))
    draw.text((w * 0.12, h * 0.08), _price(rng), fill=ink, font=_font(text_h))
    if rng.random() < 0.5 and w > 12:
        _barcode(draw, rng, (int(w * 0.12), int(h * 0.62), int(w * 0.88), int(h * 0.92)), ink)
    return np.asarray(img), np.asarray(mask, dtype=np.float32) / 255.0


def _barcode(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    box: tuple[int, int, int, int],
    ink: tuple[int, int, int],
) -> None:
    x = box[0]
    while x < box[2]:
        bar = int(rng.integers(1, 3))
        if rng.random() < 0.55:
            draw.rectangle([x, box[1], min(box[2], x + bar - 1), box[3]], fill=ink)
        x += bar


def paste_sticker(
    cover: np.ndarray, occ: np.ndarray, rng: np.random.Generator, size_frac: float
) -> None:
    """Paste one sticker of about ``size_frac`` of the cover side, often near a corner."""
    side = cover.shape[0]
    w = max(4, int(size_frac * side * rng.uniform(0.8, 1.3)))
    h = max(4, int(w * rng.uniform(0.45, 0.9)))
    rgb, alpha = make_sticker(rng, w, h)
    if rng.random() < 0.6:  # shops tend to sticker a corner
        y = int(rng.choice([rng.uniform(0, 0.1), rng.uniform(0.75, 0.9)]) * side)
        x = int(rng.choice([rng.uniform(0, 0.1), rng.uniform(0.7, 0.9)]) * side)
    else:
        y, x = int(rng.uniform(0, side - h)), int(rng.uniform(0, side - w))
    blend(cover, occ, rgb, alpha, y, x)
