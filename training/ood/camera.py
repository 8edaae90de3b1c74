"""The OOD camera: 3-D rotation of the sleeve plane, lens blur, lighting, sensor, codec.

Each model differs from the training camera on purpose: a pinhole projection of a rotated
plane (not random corner jitter), disk (lens) blur, signal-dependent shot noise with row
banding (not additive Gaussian), an IR night mode, interlaced fields, and a double JPEG with
chroma subsampling through Pillow's encoder (a stream frame re-encoded as a snapshot).
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image


def rotation_quad(side: int, yaw: float, pitch: float, roll: float, focal: float) -> np.ndarray:
    """Image corners (4x2, float32) of a ``side`` square rotated by the angles (degrees) and
    seen by a pinhole camera of focal length ``focal`` (in sleeve sides) on its axis."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    corners = np.array([[-0.5, -0.5, 0], [0.5, -0.5, 0], [0.5, 0.5, 0], [-0.5, 0.5, 0]])
    pts = corners @ (rz @ rx @ ry).T
    z = pts[:, 2] + focal
    proj = pts[:, :2] * (focal / z)[:, None] * side
    return (proj - proj.min(axis=0)).astype(np.float32)


def disk_blur(img: np.ndarray, radius: float) -> np.ndarray:
    """Defocus as a uniform disk (a lens aperture), not a Gaussian."""
    if radius < 0.5:
        return img
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    k = ((xx**2 + yy**2) <= radius**2).astype(np.float32)
    return np.asarray(cv2.filter2D(img, -1, k / k.sum()))


def streak_glare(img: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """A specular streak (a tube light reflected in a glossy sleeve): a soft rotated band."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = rng.uniform(0, np.pi)
    d = (xx - rng.uniform(0, w)) * np.cos(theta) + (yy - rng.uniform(0, h)) * np.sin(theta)
    band = np.exp(-((d / (rng.uniform(0.03, 0.12) * max(h, w))) ** 2))
    out = img.astype(np.float32) + 255.0 * strength * band[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def lighting(img: np.ndarray, rng: np.random.Generator, cast: float) -> np.ndarray:
    """White balance cast, exposure and a vignette."""
    f = img.astype(np.float32) * rng.uniform(1 - cast, 1 + cast, size=3)
    f *= rng.uniform(0.6, 1.3)
    h, w = img.shape[:2]
    yy, xx = np.mgrid[-1 : 1 : h * 1j, -1 : 1 : w * 1j]
    f *= (1 - rng.uniform(0.1, 0.45) * (xx**2 + yy**2) / 2)[..., None]
    return np.clip(f, 0, 255).astype(np.uint8)


def ir_night(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Infrared night look: red-heavy luminance (skin and paper glow), crushed blacks,
    blooming highlights; returns grey uint8."""
    f = rgb.astype(np.float32) @ np.array([0.6, 0.3, 0.1], np.float32)
    f = np.clip((f / 255.0) ** rng.uniform(0.5, 0.8) * 255 * rng.uniform(1.0, 1.3), 0, 255)
    bloom = cv2.GaussianBlur(np.maximum(f - 200, 0), (0, 0), 3)
    return np.clip(f + bloom, 0, 255).astype(np.uint8)


def interlace(img: np.ndarray, rng: np.random.Generator, shift: int) -> np.ndarray:
    """Combing: the odd field is shifted sideways (motion between fields), sometimes the even
    field is line-doubled (a deinterlacer that drops a field)."""
    out = img.copy()
    out[1::2] = np.roll(img[1::2], shift if rng.random() < 0.5 else -shift, axis=1)
    if rng.random() < 0.3:
        out[1::2] = out[0::2][: out[1::2].shape[0]]
    return out


def sensor(img: np.ndarray, rng: np.random.Generator, gain: float) -> np.ndarray:
    """Shot noise (variance grows with signal), read noise and row banding."""
    f = img.astype(np.float32)
    f = rng.poisson(np.clip(f, 0, None) / gain).astype(np.float32) * gain
    f += rng.normal(0, gain * 1.5, size=f.shape)
    rows = rng.normal(0, gain, size=(f.shape[0],) + (1,) * (f.ndim - 1))
    return np.clip(f + rows, 0, 255).astype(np.uint8)


def _pil_jpeg(img: np.ndarray, quality: int, subsampling: int) -> np.ndarray:
    buf = io.BytesIO()
    mode = "L" if img.ndim == 2 else "RGB"
    Image.fromarray(img, mode).save(buf, "JPEG", quality=quality, subsampling=subsampling)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert(mode))


def codec(img: np.ndarray, rng: np.random.Generator, q: tuple[int, int]) -> np.ndarray:
    """A stream frame (4:2:0, low quality, at a different scale) re-encoded as a snapshot."""
    h, w = img.shape[:2]
    s = rng.uniform(0.7, 1.0)
    small = cv2.resize(img, (max(8, int(w * s)), max(8, int(h * s))), interpolation=cv2.INTER_AREA)
    first = _pil_jpeg(small, int(rng.integers(q[0], q[1] + 1)), 2)
    back = cv2.resize(first, (w, h), interpolation=cv2.INTER_LINEAR)
    return _pil_jpeg(back, int(rng.integers(70, 90)), int(rng.integers(0, 3)))
