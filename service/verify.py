"""Geometric verification: RANSAC-homography inliers between a query and one stored cover.

A crop of a cover and the cover itself are related by a homography (a flat sleeve seen by a
camera), so many consistent matches are evidence the embedding alone cannot give. Works on
stored features only: nothing of a catalog image is decoded at query time.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import faiss
import numpy as np

from service.features import LocalFeatures

GRID = 4


@dataclass(frozen=True)
class Verified:
    inliers: int
    coverage: float  # share of the cover's GRID x GRID cells holding an inlier
    homography: np.ndarray | None = None  # query -> cover, at the feature working scale


UNVERIFIED = Verified(0, 0.0)


def grid_coverage(points: np.ndarray, side: int) -> float:
    """Share of a GRID x GRID grid over the cover that holds at least one inlier.

    Chance agreements (shared fonts, logos, barcodes) cluster in one region of a cover; a true
    view of the sleeve spreads its inliers over it.
    """
    if len(points) == 0:
        return 0.0
    cells = np.clip((points * GRID / side).astype(np.int64), 0, GRID - 1)
    return len({(int(x), int(y)) for x, y in cells}) / GRID**2


class Verifier:
    """Lowe-ratio matches (exact 2-NN, L2 on RootSIFT) + RANSAC homography.

    The 2-NN search is ``faiss.knn`` (BLAS distances): half the CPU of OpenCV's brute-force
    ``knnMatch`` on the same float descriptors (0.21 vs 0.42 ms for 200 x 333 descriptors),
    and the ratio test stays in numpy instead of a Python loop over ``DMatch`` objects.
    """

    def __init__(self, side: int = 320, ratio: float = 0.8, ransac_px: float = 5.0,
                 min_matches: int = 4) -> None:
        self.side, self.ratio, self.ransac_px = side, ratio, ransac_px
        # Fewer ratio-test matches than this: not verified, no RANSAC. A homography needs 4;
        # the engine raises it to the fewest inliers any rule reads (6: the second look's
        # localisation), since RANSAC over 4-5 matches that do not agree runs all its 2,000
        # iterations (5-10 ms each on the stress set's tail crops) to report at most 5.
        self.min_matches = max(4, min_matches)

    def match(self, q: LocalFeatures, c: LocalFeatures, q_float: np.ndarray | None = None
              ) -> Verified:
        """Evidence that ``q`` shows cover ``c``; ``q_float``: q's descriptors as float32."""
        if len(q) < 4 or len(c) < 4:
            return UNVERIFIED
        qd = q.float_desc() if q_float is None else q_float
        dist, idx = faiss.knn(qd, c.float_desc(), 2)
        # Squared L2 distances: the ratio is squared too.
        good = dist[:, 0] < self.ratio**2 * dist[:, 1]
        if int(good.sum()) < self.min_matches:
            return UNVERIFIED
        src = q.points[good].reshape(-1, 1, 2)
        dst = c.points[idx[good, 0]].reshape(-1, 1, 2)
        h, mask = cv2.findHomography(src, dst, cv2.RANSAC, self.ransac_px)
        if h is None or mask is None:
            return UNVERIFIED
        inl = dst.reshape(-1, 2)[mask.ravel() > 0]
        return Verified(int(mask.sum()), grid_coverage(inl, self.side), h)
