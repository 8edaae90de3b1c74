"""Two non-learned baselines for the model card: DCT perceptual hash and SIFT + RANSAC.

Both rank the whole catalog for a query and return album ids best first, so they are scored
with the same P@1/P@5 per difficulty level as the embedder.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from PIL import Image

from service.features import Extractor, FeatureConfig, LocalFeatures, to_gray
from service.verify import Verifier
from training.catalog import load_catalog, open_cover
from training.evaluate import read_query_set, scores_per_level

Ranking = list[str]


class Baseline(Protocol):
    name: str

    def rank(self, image: Image.Image) -> Ranking:
        """Catalog album ids, best match first."""
        ...


# ---------------------------------------------------------------- perceptual hash


def phash_bits(image: Image.Image | np.ndarray, hash_size: int = 8) -> np.ndarray:
    """DCT pHash: low-frequency DCT block of a 32x32 grey image, thresholded at its median."""
    small = cv2.resize(to_gray(image), (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small.astype(np.float32))[:hash_size, :hash_size]
    return (low > np.median(low)).ravel()


class PHashBaseline:
    """Rank the catalog by Hamming distance between 64-bit pHashes (ties: catalog order)."""

    name = "phash"

    def __init__(self, ids: Sequence[str], images: Iterable[Image.Image]) -> None:
        self.ids = list(ids)
        self.hashes = np.stack([phash_bits(im) for im in images])

    def rank(self, image: Image.Image) -> Ranking:
        dist = (self.hashes != phash_bits(image)).sum(axis=1)
        return [self.ids[i] for i in np.argsort(dist, kind="stable")]


# ---------------------------------------------------------------- SIFT + RANSAC


class SiftBaseline:
    """RootSIFT matching with Lowe's ratio test, ranked by RANSAC-homography inliers.

    Catalog features are computed once. With ``shortlist`` set, a global FLANN index over all
    catalog descriptors votes for candidates and only the top ``shortlist`` are verified
    geometrically (the rest follow by votes); ``shortlist=None`` verifies every cover.
    """

    name = "sift"

    def __init__(
        self,
        ids: Sequence[str],
        images: Iterable[Image.Image],
        side: int = 320,
        nfeatures: int = 800,
        ratio: float = 0.8,
        shortlist: int | None = 20,
        ransac_px: float = 5.0,
        features: Sequence[LocalFeatures] | None = None,
    ) -> None:
        self.ids = list(ids)
        self.shortlist = shortlist
        # The service's extraction and verifier: one geometric check, so this baseline's
        # figures describe the service's local-feature stages too.
        self.extractor = Extractor(FeatureConfig(side=side, max_features=nfeatures,
                                                 query_features=nfeatures))
        self.verifier = Verifier(side=side, ratio=ratio, ransac_px=ransac_px)
        self.ratio = ratio
        # ``features``: the covers' features already extracted with these settings (a store).
        self.catalog = (list(features) if features is not None
                        else [self.extractor.catalog(im) for im in images])
        self._build_index()

    def _build_index(self) -> None:
        self.owner = np.concatenate(
            [np.full(len(f.desc), i, dtype=np.int64) for i, f in enumerate(self.catalog)]
        )
        self.index = None
        if self.shortlist is not None and len(self.owner) >= 2:
            stacked = np.concatenate([f.float_desc() for f in self.catalog])
            self.index = cv2.flann.Index(stacked, {"algorithm": 1, "trees": 4})  # kd-tree

    def votes(self, q: LocalFeatures) -> np.ndarray:
        """Per-cover count of query descriptors whose nearest catalog neighbour passes the ratio."""
        votes = np.zeros(len(self.ids), dtype=np.int64)
        if self.index is None or len(q.desc) == 0:
            return votes
        nn, dist = self.index.knnSearch(q.float_desc(), 2, params={"checks": 64})
        # FLANN returns squared L2, so square the ratio; a 2nd neighbour on the same cover is
        # not a competing match, so it does not veto.
        same = self.owner[nn[:, 0]] == self.owner[nn[:, 1]]
        ok = same | (dist[:, 0] < (self.ratio**2) * dist[:, 1])
        np.add.at(votes, self.owner[nn[ok, 0]], 1)
        return votes

    def rank(self, image: Image.Image) -> Ranking:
        q = self.extractor.query(image)
        votes = self.votes(q)
        by_votes = sorted(range(len(self.ids)), key=lambda i: (-votes[i], i))
        n_check = len(by_votes) if self.shortlist is None else self.shortlist
        checked, rest = by_votes[:n_check], by_votes[n_check:]
        inl = {i: self.verifier.match(q, self.catalog[i]).inliers for i in checked}
        checked.sort(key=lambda i: (-inl[i], -votes[i], i))
        return [self.ids[i] for i in checked + rest]


BASELINES: dict[str, Callable[..., Baseline]] = {"phash": PHashBaseline, "sift": SiftBaseline}


# ---------------------------------------------------------------- queries and scoring


@dataclass
class BaselineResult:
    name: str
    scores: dict[str, dict[str, float]]
    query_ms: list[float] = field(default_factory=list)
    build_s: float = 0.0
    query_levels: list[str] = field(default_factory=list)  # level of each query_ms entry

    def ms_for(self, level: str) -> list[float]:
        """Per-query times of one level (``all``: every query)."""
        return [
            t
            for t, lv in zip(self.query_ms, self.query_levels, strict=True)
            if level in ("all", lv)
        ]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.query_ms) if self.query_ms else float("nan")


def evaluate_baseline(
    name: str,
    catalog_dir: Path,
    queries_dir: Path | Sequence[Path],
    limit: int | None = None,
    **kwargs: object,
) -> BaselineResult:
    """Build baseline ``name`` on the catalog once, rank every query (of one or several query
    sets, ``limit`` per set), score P@1/P@5 per level."""
    covers = load_catalog(catalog_dir)
    t0 = time.perf_counter()
    baseline: Baseline = BASELINES[name](
        [c.album_id for c in covers], (open_cover(c) for c in covers), **kwargs
    )
    build_s = time.perf_counter() - t0
    dirs = [queries_dir] if isinstance(queries_dir, Path) else list(queries_dir)
    items = [it for d in dirs for it in read_query_set(d)[:limit]]
    rankings, times = [], []
    for it in items:
        with Image.open(it.path) as im:
            img = im.convert("RGB")
        t = time.perf_counter()
        rankings.append(baseline.rank(img))
        times.append((time.perf_counter() - t) * 1000)
    levels = [it.level for it in items]
    return BaselineResult(name, scores_per_level(rankings, items), times, build_s, levels)
