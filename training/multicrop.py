"""Multi-crop query embedding for loose crops: embed the crop and sub-crops of it, score each
catalog cover by its best-matching sub-crop (max cosine).

A loose crop (sleeve at 40-70 % of the area) embeds the shop around the sleeve too; one of
the sub-crops is usually closer to the sleeve alone. Each sub-crop costs one more embedding,
so ``centre`` (3 crops) triples and ``grid`` (6 crops) sextuples the embed time.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from service.embedder import Embedder

# (side as a share of the crop's side, x position, y position) of each sub-crop; position
# 0..1 places the box from the left/top edge to the right/bottom edge.
CROP_SETS: dict[str, list[tuple[float, float, float]]] = {
    "none": [(1.0, 0.5, 0.5)],
    "centre": [(1.0, 0.5, 0.5), (0.8, 0.5, 0.5), (0.65, 0.5, 0.5)],
    "grid": [(1.0, 0.5, 0.5), (0.7, 0.5, 0.5), (0.7, 0.0, 0.0), (0.7, 1.0, 0.0),
             (0.7, 0.0, 1.0), (0.7, 1.0, 1.0)],
}


def sub_crop(img: Image.Image, side: float, fx: float, fy: float) -> Image.Image:
    w, h = img.size
    cw, ch = max(1, round(w * side)), max(1, round(h * side))
    x, y = round((w - cw) * fx), round((h - ch) * fy)
    return img.crop((x, y, x + cw, y + ch))


def multicrop_scores(embedder: Embedder, images: list[Image.Image], catalog: np.ndarray,
                     crops: str = "centre", batch: int = 64) -> np.ndarray:
    """(queries x catalog) cosine scores: the max over the sub-crops of each query."""
    best = np.full((len(images), len(catalog)), -np.inf, np.float32)
    for side, fx, fy in CROP_SETS[crops]:
        for i in range(0, len(images), batch):
            part = [sub_crop(im, side, fx, fy) for im in images[i : i + batch]]
            sims = embedder.embed_images(part) @ catalog.T
            best[i : i + batch] = np.maximum(best[i : i + batch], sims)
    return best
