"""Optional geometric re-rank: RootSIFT matches + RANSAC homography inliers order the top-K.

A crop of a cover and the cover itself are related by a homography (a flat sleeve seen by a
camera), so many consistent matches are strong evidence that the embedding alone cannot give.
The same verifier is the SIFT baseline of the model card (``training/baselines.py``), so the
figures measured there describe this stage.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from service.imaging import decode_image

# Tuned on held-out CCTV-style queries (model card): RootSIFT, ratio 0.8, 320 px, 800 points
# beat plain SIFT at 0.75 / 256 px / 400 points by 20 points of P@1.
SIDE = 320
N_FEATURES = 800
RATIO = 0.8
RANSAC_PX = 5.0
MIN_INLIERS = 12  # fewer is noise (shared fonts, logos, barcodes): keep the embedding's order
ACCEPT_INLIERS = 40  # this many is a sure match: stop verifying further candidates (0 = never)


@dataclass(frozen=True)
class LocalFeatures:
    points: np.ndarray  # (n, 2) float32 keypoint positions at the working scale
    desc: np.ndarray  # (n, 128) RootSIFT descriptors; float16 at rest to halve the cache


def to_gray(image: Image.Image | np.ndarray) -> np.ndarray:
    """uint8 single-channel array from a PIL image or an RGB/gray array."""
    arr = np.asarray(image.convert("L")) if isinstance(image, Image.Image) else image
    if arr.ndim == 3:
        arr = cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(arr, dtype=np.uint8)


def resize_max_side(gray: np.ndarray, side: int) -> np.ndarray:
    """Scale so the longer side is ``side``: CCTV crops are scaled up to meet the covers."""
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


class GeometricVerifier:
    """Local features of one image, and the RANSAC-homography inlier count between two."""

    def __init__(self, side: int = SIDE, n_features: int = N_FEATURES, ratio: float = RATIO,
                 ransac_px: float = RANSAC_PX) -> None:
        self.side, self.ratio, self.ransac_px = side, ratio, ransac_px
        self._sift = cv2.SIFT.create(nfeatures=n_features)
        self._matcher = cv2.BFMatcher(cv2.NORM_L2)

    def features(self, image: Image.Image | np.ndarray) -> LocalFeatures:
        gray = resize_max_side(to_gray(image), self.side)
        kps, desc = self._sift.detectAndCompute(gray, None)
        pts = np.array([k.pt for k in kps], dtype=np.float32).reshape(-1, 2)
        if desc is None:
            return LocalFeatures(pts, np.zeros((0, 128), np.float16))
        return LocalFeatures(pts, root_sift(desc).astype(np.float16))

    def inliers(self, q: LocalFeatures, c: LocalFeatures) -> int:
        """Inliers of a RANSAC homography fitted to Lowe-ratio matches from ``q`` to ``c``."""
        return self.match(q, c).inliers

    def match(self, q: LocalFeatures, c: LocalFeatures) -> Verified:
        """Inliers of a RANSAC homography from ``q`` to ``c`` and their spread over ``c``."""
        if len(q.desc) < 2 or len(c.desc) < 2:
            return Verified(0, 0.0)
        pairs = self._matcher.knnMatch(q.desc.astype(np.float32), c.desc.astype(np.float32), k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < self.ratio * p[1].distance]
        if len(good) < 4:
            return Verified(0, 0.0)
        src = q.points[[m.queryIdx for m in good]].reshape(-1, 1, 2)
        dst = c.points[[m.trainIdx for m in good]].reshape(-1, 1, 2)
        h, mask = cv2.findHomography(src, dst, cv2.RANSAC, self.ransac_px)
        if h is None or mask is None:
            return Verified(0, 0.0)
        inl = dst.reshape(-1, 2)[mask.ravel() > 0]
        return Verified(int(mask.sum()), grid_coverage(inl, self.side))


@dataclass(frozen=True)
class Verified:
    inliers: int
    coverage: float  # share of the cover's GRID x GRID cells holding an inlier


GRID = 4


def grid_coverage(points: np.ndarray, side: int) -> float:
    """Share of a GRID x GRID grid over the cover that holds at least one inlier.

    Chance agreements (shared fonts, logos, barcodes) cluster in one region of a cover; a true
    view of the sleeve spreads its inliers over it.
    """
    if len(points) == 0:
        return 0.0
    cells = np.clip((points * GRID / side).astype(np.int64), 0, GRID - 1)
    return len({(int(x), int(y)) for x, y in cells}) / GRID**2


class Reranker:
    """Reorders the embedding's top-K by geometric evidence; catalog features in an LRU cache.

    The cache is bounded (about 200 KB an album, so the default 1024 is ~210 MB) because a
    100k catalog's features would not fit in memory; the albums people browse stay hot.
    """

    def __init__(self, cache_size: int = 1024, verifier: GeometricVerifier | None = None,
                 accept_inliers: int = ACCEPT_INLIERS, max_pixels: int = 50_000_000) -> None:
        self.verifier = verifier or GeometricVerifier()
        self.max_pixels = max_pixels
        self.accept_inliers = accept_inliers
        self._cache: OrderedDict[Path, LocalFeatures] = OrderedDict()
        self.cache_size = cache_size
        self._lock = threading.Lock()

    def _candidate(self, path: Path) -> LocalFeatures | None:
        with self._lock:
            if (hit := self._cache.get(path)) is not None:
                self._cache.move_to_end(path)
                return hit
        try:
            # The embedder's decode path: EXIF rotation and 16-bit/CMYK/alpha handled the same
            # way, so an enrolled image is verified as it was embedded.
            image, _ = decode_image(path.read_bytes(), self.max_pixels)
        except (OSError, ValueError):
            return None
        feats = self.verifier.features(image)
        with self._lock:
            self._cache[path] = feats
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return feats

    def warm(self, path: Path) -> None:
        """Compute and cache one catalog cover's features ahead of the first query."""
        self._candidate(path)

    def forget(self, path: Path) -> None:
        """Drop a cached candidate (its album was deleted or replaced)."""
        with self._lock:
            self._cache.pop(path, None)

    def order(self, query: Image.Image, paths: list[Path]) -> tuple[list[int], list[Verified]]:
        """Positions of ``paths`` reordered: verified candidates (>= MIN_INLIERS) first by
        inlier count, then the rest in the embedding's order; plus each path's evidence.

        Candidates are checked in the embedding's order and checking stops at the first one
        with ``accept_inliers``: such a count does not happen by chance, and with a good
        embedding the true cover is usually first, so most queries cost one verification.
        """
        q = self.verifier.features(query)
        found = [Verified(0, 0.0)] * len(paths)
        for i, p in enumerate(paths):
            cand = self._candidate(p)
            found[i] = Verified(0, 0.0) if cand is None else self.verifier.match(q, cand)
            if self.accept_inliers and found[i].inliers >= self.accept_inliers:
                break
        counts = [v.inliers for v in found]
        verified = sorted((i for i, n in enumerate(counts) if n >= MIN_INLIERS),
                          key=lambda i: (-counts[i], i))
        return verified + [i for i in range(len(paths)) if counts[i] < MIN_INLIERS], found
