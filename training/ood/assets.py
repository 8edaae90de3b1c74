"""Procedural scene assets of the OOD generator: shop backgrounds and sticker designs.

Deliberately unlike the training synthesis (vertical spine bands, rectangular price stickers
in DejaVu Sans): crates with wood grain, browser bins of fanned sleeves seen from above,
pegboard, counter laminate; round sale badges, paper tags on a string, masking tape with
marker writing, genre divider tabs, in serif / mono / Liberation fonts.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

_FONTS = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSerif-Italic.ttf",
]


@lru_cache(maxsize=128)
def font(index: int, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype(_FONTS[index % len(_FONTS)], size)
    except OSError:
        return ImageFont.load_default()


def _wood(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Crate planks: horizontal boards with sinusoidal grain and dark gaps."""
    base = rng.uniform(90, 190) * np.array([1.0, rng.uniform(0.7, 0.85), rng.uniform(0.45, 0.6)])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    grain = np.sin(yy * rng.uniform(0.3, 0.9) + 3 * np.sin(xx * rng.uniform(0.01, 0.04)))
    img = base[None, None, :] * (1 + 0.12 * grain[..., None])
    plank = max(6, int(h * rng.uniform(0.12, 0.3)))
    img[(yy.astype(int) % plank) < max(1, plank // 12)] *= 0.35
    return img


def _bin(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A browser bin from above: the top edges of fanned sleeves as slanted coloured strips."""
    img = np.zeros((h, w, 3), np.float32)
    y, slant = 0, rng.uniform(-0.4, 0.4)
    while y < h + abs(slant) * w:
        strip = int(rng.integers(3, max(4, h // 10)))
        colour = rng.uniform(15, 235, size=3)
        pts = np.array([[0, y], [w, y + slant * w], [w, y + slant * w + strip], [0, y + strip]])
        cv2.fillPoly(img, [pts.astype(np.int32)], colour.tolist())
        y += strip
    return img


def _pegboard(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    img = np.ones((h, w, 3), np.float32) * rng.uniform(120, 230, size=3)
    pitch = int(rng.integers(8, 20))
    for yy in range(pitch // 2, h, pitch):
        for xx in range(pitch // 2, w, pitch):
            cv2.circle(img, (xx, yy), max(1, pitch // 6), (25.0, 25.0, 25.0), -1)
    return img


def _counter(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Speckled laminate with a soft lamp fall-off."""
    img = np.ones((h, w, 3), np.float32) * rng.uniform(40, 200, size=3)
    img += rng.normal(0, 18, size=(h, w, 1)) * (rng.random((h, w, 1)) < 0.15)
    yy = np.linspace(-1, 1, h)[:, None, None]
    return img * (1 - 0.3 * yy**2)


BACKGROUNDS: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "crate": _wood, "bin": _bin, "pegboard": _pegboard, "counter": _counter,
}


def background(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, str]:
    """A random shop background, RGB uint8 ``(h, w, 3)``, and its kind."""
    kind = str(rng.choice(list(BACKGROUNDS)))
    img = BACKGROUNDS[kind](rng, h, w)
    return np.clip(img, 0, 255).astype(np.uint8), kind


def _badge(rng: np.random.Generator, side: int) -> Image.Image:
    """A star-burst sale badge with a word in the middle."""
    img = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    n, c = int(rng.integers(10, 18)), side / 2
    ang = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False)
    rad = np.where(np.arange(2 * n) % 2 == 0, c * 0.98, c * 0.78)
    d.polygon([(c + r * np.cos(a), c + r * np.sin(a)) for a, r in zip(ang, rad, strict=True)],
              fill=(int(rng.integers(180, 256)), int(rng.integers(0, 80)), 40, 255))
    word = str(rng.choice(["SALE", "USED", "NEW", "-50%", "RARE", "1st"]))
    d.text((c, c), word, fill=(255, 255, 255, 255), font=font(int(rng.integers(4)), side // 4),
           anchor="mm")
    return img


def _tag(rng: np.random.Generator, side: int) -> Image.Image:
    """A manila tag with a punched hole, a string and a handwritten-looking price."""
    w, h = side, int(side * rng.uniform(0.5, 0.7))
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.polygon([(h // 3, 0), (w - 1, 0), (w - 1, h - 1), (h // 3, h - 1), (0, h // 2)],
              fill=(225, 200, 150, 255))
    d.ellipse([h // 5, h // 2 - 3, h // 5 + 6, h // 2 + 3], fill=(0, 0, 0, 0))
    d.line([(0, h // 2), (h // 5, h // 2)], fill=(240, 240, 240, 255), width=2)
    d.text((h // 2, h // 4), f"{int(rng.integers(2, 90))},-", fill=(30, 30, 120, 255),
           font=font(3, max(6, h // 2)))
    return img


def _tape(rng: np.random.Generator, side: int) -> Image.Image:
    """A strip of translucent masking tape with marker writing, slightly rotated."""
    w, h = side, max(6, int(side * rng.uniform(0.22, 0.35)))
    img = Image.new("RGBA", (w, h), (235, 225, 190, int(rng.integers(170, 230))))
    ImageDraw.Draw(img).text((4, 1), str(rng.choice(["VG+", "NM", "M-", "£8", "$12", "G"])),
                             fill=(10, 10, 10, 255), font=font(1, max(5, h - 4)))
    return img.rotate(float(rng.uniform(-25, 25)), expand=True)


def _divider(rng: np.random.Generator, side: int) -> Image.Image:
    """A plastic genre divider tab: a rounded rectangle with a genre word."""
    w, h = side, max(8, int(side * 0.4))
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle([0, 0, w - 1, h - 1], radius=h // 3,
                        fill=tuple(int(v) for v in rng.integers(0, 256, size=3)) + (255,))
    d.text((w // 2, h // 2), str(rng.choice(["JAZZ", "SOUL", "ROCK", "DUB", "FOLK"])),
           fill=(250, 250, 250, 255), font=font(2, max(5, h // 2)), anchor="mm")
    return img


STICKERS: dict[str, Callable[[np.random.Generator, int], Image.Image]] = {
    "badge": _badge, "tag": _tag, "tape": _tape, "divider": _divider,
}


def sticker(rng: np.random.Generator, side: int) -> tuple[np.ndarray, np.ndarray, str]:
    """A random sticker about ``side`` px wide: ``(rgb uint8, alpha float32, kind)``."""
    kind = str(rng.choice(list(STICKERS)))
    arr = np.asarray(STICKERS[kind](rng, max(8, side)).convert("RGBA"))
    return arr[..., :3].copy(), arr[..., 3].astype(np.float32) / 255.0, kind
