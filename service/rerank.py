"""Optional geometric re-rank: ORB features + RANSAC homography; inlier counts order the top-K.

A crop of a cover and the cover itself are related by a homography (a flat sleeve seen by a
camera), so many consistent matches are strong evidence that the embedding alone cannot give.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

SIDE = 512
MIN_INLIERS = 12  # fewer than this is noise: keep the embedding's order
DOMINANCE = 2.0  # a challenger needs this many times the first choice's inliers


class Reranker:
    def __init__(self, n_features: int = 1000) -> None:
        self._orb = cv2.ORB_create(nfeatures=n_features)  # type: ignore[attr-defined]
        self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING)

    def features(self, image: Image.Image) -> tuple[list[cv2.KeyPoint], np.ndarray | None]:
        gray = image.convert("L")
        # One working scale for query and candidates: small catalog images are scaled up too,
        # otherwise they yield a handful of keypoints and the comparison is meaningless.
        scale = SIDE / max(gray.size)
        gray = gray.resize((max(1, round(gray.width * scale)), max(1, round(gray.height * scale))),
                           Image.Resampling.BILINEAR)
        keypoints, desc = self._orb.detectAndCompute(np.asarray(gray), None)
        return list(keypoints), desc

    def inliers(self, query: tuple[list[cv2.KeyPoint], np.ndarray | None], path: Path) -> int:
        kq, dq = query
        try:
            with Image.open(path) as img:
                kc, dc = self.features(img)
        except OSError:
            return 0
        if dq is None or dc is None or len(kq) < 4 or len(kc) < 4:
            return 0
        pairs = self._matcher.knnMatch(dq, dc, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.75 * p[1].distance]
        # One match per candidate keypoint: many-to-one matches inflate the inlier count.
        good = list({m.trainIdx: m for m in sorted(good, key=lambda m: -m.distance)}.values())
        if len(good) < 4:
            return 0
        src = np.array([kq[m.queryIdx].pt for m in good], dtype=np.float32).reshape(-1, 1, 2)
        dst = np.array([kc[m.trainIdx].pt for m in good], dtype=np.float32).reshape(-1, 1, 2)
        _, mask = cv2.findHomography(src, dst, cv2.RANSAC, 5.0)
        return int(mask.sum()) if mask is not None else 0

    def order(self, query: Image.Image, paths: list[Path]) -> list[int]:
        """Positions of ``paths`` reordered by geometric evidence.

        Inliers overrule the embedding's order only when decisive: at least MIN_INLIERS and
        clearly more than the embedding's own first choice (shared fonts and logos give every
        candidate some inliers).
        """
        feats = self.features(query)
        counts = [self.inliers(feats, p) for p in paths]
        order = sorted(range(len(paths)), key=lambda i: -counts[i])
        best = order[0] if order else 0
        if counts[best] >= max(MIN_INLIERS, DOMINANCE * counts[0]) and best != 0:
            return [best] + [i for i in range(len(paths)) if i != best]
        return list(range(len(paths)))
