"""Local features of one image: RootSIFT keypoints, capped in number, stored compactly as uint8.

One job: image -> ``LocalFeatures``. The configuration is part of every stored feature's key
(``FeatureConfig.key``), so changing any value here is a new feature set, never a stale one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

# RootSIFT components are sqrt of an L1-normalised histogram (each <= ~0.5 in practice):
# times 512 they fill uint8 with no measurable loss of matching (a quarter of float32's bytes).
QUANT = 512.0
DIM = 128


@dataclass(frozen=True)
class FeatureConfig:
    """Extraction settings; ``key`` names the feature set in the store."""

    kind: str = "rootsift"
    side: int = 320  # longer side the image is scaled to: CCTV crops are scaled up to covers
    max_features: int = 500  # strongest keypoints kept per catalog cover
    query_features: int = 500  # ... per query crop
    # Longer side of a query crop (0: ``side``). Not part of the key: catalog features do not
    # depend on it (SIFT matches across scales; the homography maps query to cover points).
    query_side: int = 0
    version: int = 1  # bump when extraction code changes its output

    def query_working_side(self, size: tuple[int, int]) -> int:
        """Longer side a query crop of ``size`` (w, h) is scaled to, its keypoints' scale: its
        own, kept between ``query_side`` (small CCTV crops are scaled up to it) and ``side``
        (large photos down to it). Scaling a 100 px crop past 256 adds only interpolated
        pixels (OpenCV's SIFT doubles its input too) and costs RootSIFT time."""
        low = self.query_side or self.side
        return min(max(max(size), low), max(low, self.side))

    @property
    def key(self) -> str:
        return f"{self.kind}-s{self.side}-n{self.max_features}-v{self.version}"

    def provenance(self) -> dict[str, Any]:
        """What a calibration measured with: inlier counts depend on all of it."""
        return {"catalog": self.key, "query_side": self.query_side or self.side,
                "query_features": self.query_features}


@dataclass(frozen=True)
class LocalFeatures:
    points: np.ndarray  # (n, 2) float32 keypoint positions at the working scale
    desc: np.ndarray  # (n, 128) uint8 RootSIFT * QUANT

    def __len__(self) -> int:
        return len(self.desc)

    def float_desc(self) -> np.ndarray:
        return np.ascontiguousarray(self.desc, dtype=np.float32)

    def to_bytes(self) -> tuple[bytes, bytes]:
        return (np.ascontiguousarray(self.points, np.float32).tobytes(),
                np.ascontiguousarray(self.desc, np.uint8).tobytes())

    @classmethod
    def from_bytes(cls, points: bytes, desc: bytes) -> LocalFeatures:
        pts = np.frombuffer(points, dtype=np.float32).reshape(-1, 2)
        return cls(pts, np.frombuffer(desc, dtype=np.uint8).reshape(-1, DIM))


EMPTY = LocalFeatures(np.zeros((0, 2), np.float32), np.zeros((0, DIM), np.uint8))


def to_gray(image: Image.Image | np.ndarray) -> np.ndarray:
    """uint8 single-channel array from a PIL image or an RGB/gray array."""
    arr = np.asarray(image.convert("L")) if isinstance(image, Image.Image) else image
    if arr.ndim == 3:
        arr = cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(arr, dtype=np.uint8)


def resize_max_side(gray: np.ndarray, side: int) -> np.ndarray:
    """Scale so the longer side is ``side``."""
    h, w = gray.shape[:2]
    scale = side / max(h, w)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))),
                      interpolation=interp)


def root_sift(desc: np.ndarray) -> np.ndarray:
    """RootSIFT (Arandjelovic & Zisserman 2012): L1-normalise then sqrt, so L2 ~ Hellinger."""
    desc = desc.astype(np.float32)
    desc /= np.abs(desc).sum(axis=1, keepdims=True) + 1e-7
    return np.sqrt(desc)


class Extractor:
    """RootSIFT extraction; one OpenCV detector per thread (they are not thread-safe)."""

    def __init__(self, config: FeatureConfig | None = None) -> None:
        self.config = config or FeatureConfig()
        if self.config.kind != "rootsift":
            raise ValueError(f"unknown local feature kind {self.config.kind!r}")
        self._local = threading.local()

    def _sift(self, n: int) -> cv2.SIFT:
        cache: dict[int, cv2.SIFT] = self._local.__dict__.setdefault("sift", {})
        if n not in cache:
            cache[n] = cv2.SIFT.create(nfeatures=n)
        return cache[n]

    def catalog(self, image: Image.Image | np.ndarray) -> LocalFeatures:
        return self._extract(image, self.config.max_features, self.config.side)

    def query(self, image: Image.Image | np.ndarray) -> LocalFeatures:
        """Points are at the query's working scale (``FeatureConfig.query_working_side``)."""
        size = image.size if isinstance(image, Image.Image) else image.shape[1::-1]
        return self._extract(image, self.config.query_features,
                             self.config.query_working_side(size))

    def _extract(self, image: Image.Image | np.ndarray, n: int, side: int) -> LocalFeatures:
        gray = resize_max_side(to_gray(image), side)
        kps, desc = self._sift(n).detectAndCompute(gray, None)
        if desc is None or not kps:
            return EMPTY
        pts = np.array([k.pt for k in kps], dtype=np.float32).reshape(-1, 2)
        quant = np.clip(root_sift(desc) * QUANT, 0, 255).astype(np.uint8)
        return LocalFeatures(pts[:n], quant[:n])
