"""The CCTV camera: tilt inside a loose crop, shelf background, glare, blur, noise, JPEG."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CameraParams:
    """One difficulty level of the camera model; ranges are sampled uniformly per query."""

    tilt: float  # max corner displacement as a fraction of the cover side
    margin: tuple[float, float]  # loose-crop border around the sleeve, fraction of side
    glare_prob: float
    glare_strength: tuple[float, float]
    short_side: tuple[int, int]  # output short side in pixels
    defocus_sigma: tuple[float, float]  # in output pixels
    motion_prob: float
    motion_len: tuple[int, int]  # in output pixels
    contrast: tuple[float, float]
    gamma: tuple[float, float]
    noise_sigma: tuple[float, float]  # in 0..255 grey levels
    jpeg_quality: tuple[int, int]
    grayscale_prob: float
    occluded_prob: float  # share of queries with any occluder
    occlusion: tuple[float, float]  # target share of the cover hidden, when occluded


LEVELS: dict[str, CameraParams] = {
    "easy": CameraParams(
        tilt=0.06, margin=(0.02, 0.12), glare_prob=0.1, glare_strength=(0.1, 0.3),
        short_side=(128, 224), defocus_sigma=(0.0, 0.6), motion_prob=0.1, motion_len=(2, 3),
        contrast=(0.85, 1.1), gamma=(0.9, 1.1), noise_sigma=(0.0, 4.0), jpeg_quality=(60, 90),
        grayscale_prob=1.0, occluded_prob=0.5, occlusion=(0.02, 0.12),
    ),
    "medium": CameraParams(
        tilt=0.12, margin=(0.05, 0.2), glare_prob=0.3, glare_strength=(0.15, 0.45),
        short_side=(80, 160), defocus_sigma=(0.3, 1.2), motion_prob=0.3, motion_len=(2, 5),
        contrast=(0.65, 1.15), gamma=(0.75, 1.35), noise_sigma=(2.0, 8.0),
        jpeg_quality=(30, 70), grayscale_prob=1.0, occluded_prob=0.8, occlusion=(0.05, 0.25),
    ),
    "hard": CameraParams(
        tilt=0.2, margin=(0.08, 0.3), glare_prob=0.5, glare_strength=(0.25, 0.6),
        short_side=(64, 112), defocus_sigma=(0.5, 1.4), motion_prob=0.5, motion_len=(3, 6),
        contrast=(0.5, 1.1), gamma=(0.6, 1.6), noise_sigma=(3.0, 11.0), jpeg_quality=(20, 50),
        grayscale_prob=1.0, occluded_prob=0.95, occlusion=(0.15, 0.4),
    ),
}


def _u(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(rng.uniform(r[0], r[1]))


def shelf_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Rows of record spines and shelf boards: vertical bands of random tone plus texture."""
    bg = np.empty((h, w, 3), np.float32)
    x = 0
    while x < w:
        band = int(rng.integers(2, max(3, w // 12)))
        bg[:, x : x + band] = rng.uniform(20, 200, size=3)
        x += band
    if rng.random() < 0.5:  # a shelf board
        y = int(rng.integers(0, h))
        bg[y : y + max(2, h // 15)] = rng.uniform(60, 160)
    bg += rng.normal(0, 6, size=(h, w, 1))
    return np.clip(bg, 0, 255).astype(np.uint8)


def tilt_into_crop(cover: np.ndarray, p: CameraParams, rng: np.random.Generator) -> np.ndarray:
    """Warp the sleeve by a random perspective into a loose crop with shelf background."""
    side = cover.shape[0]
    m = [_u(rng, p.margin) * side for _ in range(4)]  # left, top, right, bottom
    W, H = int(side + m[0] + m[2]), int(side + m[1] + m[3])
    src = np.array([[0, 0], [side, 0], [side, side], [0, side]], dtype=np.float32)
    dst = src + np.array([m[0], m[1]], dtype=np.float32)
    dst += rng.uniform(-p.tilt, p.tilt, size=(4, 2)).astype(np.float32) * side
    mat = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(cover, mat, (W, H), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full((side, side), 255, np.uint8), mat, (W, H))
    out = shelf_background(rng, H, W)
    keep = mask[..., None].astype(np.float32) / 255.0
    return (keep * warped + (1 - keep) * out).astype(np.uint8)


def add_glare(img: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """A soft elliptical highlight, as from a shop light on a glossy sleeve."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    sy, sx = rng.uniform(0.08, 0.3) * h, rng.uniform(0.08, 0.3) * w
    blob = np.exp(-(((yy - cy) / sy) ** 2 + ((xx - cx) / sx) ** 2))
    extra = (255.0 * strength * blob)[..., None] if img.ndim == 3 else 255.0 * strength * blob
    return np.clip(img.astype(np.float32) + extra, 0, 255).astype(np.uint8)


def motion_kernel(length: int, angle: float) -> np.ndarray:
    """A normalised line kernel of ``length`` pixels at ``angle`` degrees."""
    k = np.zeros((length, length), np.float32)
    k[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle, 1.0)
    out = np.asarray(cv2.warpAffine(k, rot, (length, length)), dtype=np.float32)
    return out / max(float(out.sum()), 1e-6)


def _downscale(img: np.ndarray, short: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = short / min(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)


def camera(img: np.ndarray, p: CameraParams, rng: np.random.Generator) -> np.ndarray:
    """Apply the whole camera to an RGB uint8 (already occluded) sleeve; return uint8 L or RGB."""
    out = tilt_into_crop(img, p, rng)
    if rng.random() < p.glare_prob:
        out = add_glare(out, _u(rng, p.glare_strength), rng)
    if rng.random() < p.grayscale_prob:
        out = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
    out = _downscale(out, int(rng.integers(p.short_side[0], p.short_side[1] + 1)))
    sigma = _u(rng, p.defocus_sigma)
    if sigma > 0.2:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    if rng.random() < p.motion_prob:
        length = int(rng.integers(p.motion_len[0], p.motion_len[1] + 1))
        out = cv2.filter2D(out, -1, motion_kernel(length, float(rng.uniform(0, 180))))
    f = out.astype(np.float32) / 255.0
    f = np.clip((f - 0.5) * _u(rng, p.contrast) + 0.5 + rng.uniform(-0.08, 0.08), 0, 1)
    f = f ** _u(rng, p.gamma) * 255.0
    f += rng.normal(0, _u(rng, p.noise_sigma), size=f.shape)
    out = np.clip(f, 0, 255).astype(np.uint8)
    quality = int(rng.integers(p.jpeg_quality[0], p.jpeg_quality[1] + 1))
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        return out
    flag = cv2.IMREAD_GRAYSCALE if out.ndim == 2 else cv2.IMREAD_COLOR
    decoded = cv2.imdecode(buf, flag)
    return out if decoded is None else np.asarray(decoded)
