"""Domain-randomised training views: every factor far wider than the target conditions.

Framing 30-100 % of the crop, strong perspective + in-plane rotation, colour or grey, colour
jitter and illumination gradients, Gaussian / motion / box blur, Gaussian or speckle noise,
JPEG 15-95, and occluders of many kinds (training-pool hands, price stickers, other sleeves,
straps, fingers across the middle, cables). The backgrounds are shelves or other sleeves.
None of this is the OOD generator's code (``training.ood``): widening the training
distribution must not be confused with training on the evaluation one.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from training.synth.blend import blend
from training.synth.camera import motion_kernel, shelf_background
from training.synth.hands import HandCutout, paste_hand
from training.synth.pipeline import Query
from training.synth.stickers import paste_sticker


def _other_sleeve(arr: np.ndarray, occ: np.ndarray, other: np.ndarray,
                  rng: np.random.Generator) -> None:
    """Another sleeve in front, entering from a side (a crate of sleeves)."""
    side = arr.shape[0]
    s = int(side * rng.uniform(0.5, 1.0))
    patch = cv2.resize(other, (s, s), interpolation=cv2.INTER_AREA)
    dy, dx = (int(v) for v in rng.uniform(-0.95, 0.95, size=2) * side)
    if abs(dy) < side * 0.5 and abs(dx) < side * 0.5:  # keep most of the sleeve visible
        dx = int(np.sign(dx or 1) * side * rng.uniform(0.5, 0.95))
    blend(arr, occ, patch, np.ones((s, s), np.float32), dy, dx)


def _band(arr: np.ndarray, occ: np.ndarray, rng: np.random.Generator, width: float,
          colour: np.ndarray, alpha: float) -> None:
    """A straight band through the sleeve: a strap (wide) or a cable (thin)."""
    side = arr.shape[0]
    layer = np.zeros((side, side), np.float32)
    p0 = rng.uniform(0, side, size=2)
    ang = rng.uniform(0, np.pi)
    d = np.array([np.cos(ang), np.sin(ang)]) * side * 2
    cv2.line(layer, tuple(int(v) for v in p0 - d), tuple(int(v) for v in p0 + d), 1.0,
             max(1, int(width * side)))
    rgb = np.broadcast_to(colour.astype(np.uint8), (side, side, 3)).copy()
    blend(arr, occ, rgb, layer * alpha, 0, 0)


def _finger(arr: np.ndarray, occ: np.ndarray, rng: np.random.Generator) -> None:
    """A finger or thumb across the middle: a skin-toned capsule with a shaded edge."""
    side = arr.shape[0]
    layer = np.zeros((side, side), np.float32)
    c = rng.uniform(0.3, 0.7, size=2) * side
    ang = rng.uniform(0, np.pi)
    d = np.array([np.cos(ang), np.sin(ang)]) * side * rng.uniform(0.15, 0.4)
    cv2.line(layer, tuple(int(v) for v in c - d), tuple(int(v) for v in c + d), 1.0,
             max(2, int(side * rng.uniform(0.06, 0.12))))
    layer = np.asarray(cv2.GaussianBlur(layer, (0, 0), 1.5), np.float32)
    skin = np.array([rng.uniform(120, 240), rng.uniform(80, 190), rng.uniform(60, 160)])
    rgb = np.clip(skin * (0.75 + 0.25 * layer[..., None]), 0, 255).astype(np.uint8)
    blend(arr, occ, rgb, layer, 0, 0)


# Factors that ``off`` (``fit --synth-off``) can turn off one by one, for the ablation table.
FACTORS = ("crops", "occluders", "light", "framing", "colour", "blur", "noise", "jpeg")


class WideSynth:
    """Callable like ``QuerySynth``: ``(cover RGB uint8 (S,S,3), rng) -> Query``."""

    def __init__(self, hands: list[HandCutout], others: list[np.ndarray],
                 off: frozenset[str] = frozenset()) -> None:
        if bad := set(off) - set(FACTORS):
            raise ValueError(f"unknown factors {sorted(bad)}; choose from {FACTORS}")
        self.hands, self.others, self.off = hands, others, off

    def __call__(self, cover: np.ndarray, rng: np.random.Generator) -> Query:
        arr = self._crop_scale(cover.copy(), rng)
        occ = np.zeros(arr.shape[:2], bool)
        names: list[str] = []
        if rng.random() < 0.85 and "occluders" not in self.off:
            names = self._occlude(arr, occ, rng)
        if "light" not in self.off:
            arr = self._light(arr, rng)
        out = self._frame(arr, rng)
        out = self._camera(out, rng)
        mode = "L" if out.ndim == 2 else "RGB"
        return Query(Image.fromarray(out, mode), "wide", float(occ.mean()), names)

    def _crop_scale(self, arr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Sometimes only part of the sleeve is in view (a crop at 70-95 % of the side)."""
        if rng.random() > 0.15 or "crops" in self.off:
            return arr
        side = arr.shape[0]
        s = int(side * rng.uniform(0.7, 0.95))
        y, x = (int(v) for v in rng.integers(0, side - s + 1, size=2))
        return cv2.resize(arr[y : y + s, x : x + s], (side, side))

    def _occlude(self, arr: np.ndarray, occ: np.ndarray, rng: np.random.Generator) -> list[str]:
        target, names = rng.uniform(0.03, 0.5), []
        for _ in range(5):
            if occ.mean() >= target:
                break
            kind = str(rng.choice(["hand", "sticker", "sleeve", "strap", "finger", "cable"],
                                  p=[0.3, 0.2, 0.15, 0.1, 0.15, 0.1]))
            if kind == "hand" and self.hands:
                hand = self.hands[int(rng.integers(len(self.hands)))]
                paste_hand(arr, occ, hand, rng, float(rng.uniform(0.25, 0.7)))
            elif kind == "sleeve" and self.others:
                _other_sleeve(arr, occ, self.others[int(rng.integers(len(self.others)))], rng)
            elif kind == "strap":
                _band(arr, occ, rng, rng.uniform(0.06, 0.18), rng.uniform(0, 255, 3),
                      rng.uniform(0.7, 1.0))
            elif kind == "cable":
                _band(arr, occ, rng, rng.uniform(0.01, 0.03), rng.uniform(0, 80, 3), 1.0)
            elif kind == "finger":
                _finger(arr, occ, rng)
            else:
                paste_sticker(arr, occ, rng, float(rng.uniform(0.08, 0.35)))
            names.append(kind)
        return names

    def _light(self, arr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Colour jitter (per-channel gain, saturation) and a linear illumination gradient."""
        f = arr.astype(np.float32) * rng.uniform(0.7, 1.3, size=3)
        grey = f.mean(axis=2, keepdims=True)
        f = grey + (f - grey) * rng.uniform(0.3, 1.5)
        h, w = arr.shape[:2]
        ang = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[-0.5 : 0.5 : h * 1j, -0.5 : 0.5 : w * 1j]
        f *= (1 + rng.uniform(0, 1.0) * (xx * np.cos(ang) + yy * np.sin(ang)))[..., None]
        return np.clip(f * rng.uniform(0.6, 1.3), 0, 255).astype(np.uint8)

    def _frame(self, arr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Strong perspective + rotation, sleeve at 30-100 % of the crop area."""
        side = arr.shape[0]
        narrow = "framing" in self.off  # the classic range: small tilt, sleeve fills the crop
        jitter, turn, fill = (0.06, 0.0, 0.8) if narrow else (0.25, 30.0, 0.3)
        src = np.array([[0, 0], [side, 0], [side, side], [0, side]], np.float32)
        dst = src + rng.uniform(-jitter, jitter, size=(4, 2)).astype(np.float32) * side
        c, ang = dst.mean(axis=0), np.radians(rng.uniform(-turn, turn))
        rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]], np.float32)
        dst = (dst - c) @ rot.T
        x, y = dst[:, 0], dst[:, 1]
        area = 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))
        crop = float(np.sqrt(area / rng.uniform(fill, 1.0)))
        # the crop may cut the sleeve's corners (a tight crop of a tilted sleeve)
        dst += crop / 2 + rng.uniform(-0.15, 0.15, size=2).astype(np.float32) * crop
        size = max(16, int(crop))
        mat = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
        warped = cv2.warpPerspective(arr, mat, (size, size), flags=cv2.INTER_LINEAR)
        mask = cv2.warpPerspective(np.ones((side, side), np.float32), mat, (size, size))
        bg = self._background(rng, size)
        return (mask[..., None] * warped + (1 - mask[..., None]) * bg).astype(np.uint8)

    def _background(self, rng: np.random.Generator, size: int) -> np.ndarray:
        if self.others and rng.random() < 0.5:  # other sleeves around it, as in a crate
            tiles = int(rng.integers(2, 5))
            t = size // tiles + 1
            rows = [np.concatenate([cv2.resize(self.others[int(rng.integers(len(self.others)))],
                                               (t, t)) for _ in range(tiles)], 1)
                    for _ in range(tiles)]
            return np.concatenate(rows, 0)[:size, :size]
        return shelf_background(rng, size, size)

    def _camera(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() < 0.5 or "colour" in self.off:
            img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        short = int(rng.integers(48, 225))
        s = short / img.shape[0]
        img = cv2.resize(img, (short, short), interpolation=cv2.INTER_AREA if s < 1 else
                         cv2.INTER_LINEAR)
        r = rng.random() if "blur" not in self.off else 1.0
        if r < 0.3:
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 2.0))
        elif r < 0.5:
            k = motion_kernel(int(rng.integers(2, 8)), float(rng.uniform(0, 180)))
            img = cv2.filter2D(img, -1, k)
        elif r < 0.6:
            img = cv2.blur(img, (int(rng.integers(2, 4)),) * 2)
        f = img.astype(np.float64)
        sigma = rng.uniform(0, 14)
        if "noise" in self.off:
            pass
        elif rng.random() < 0.7:  # additive (read) noise
            f = f + rng.normal(0, sigma, f.shape)
        else:  # speckle: noise that grows with the signal
            f = f * (1 + rng.normal(0, sigma / 100, f.shape))
        img = np.clip(f, 0, 255).astype(np.uint8)
        if "jpeg" in self.off:
            return img
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(15, 96))])
        dec = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else None
        return img if dec is None else np.asarray(dec)
