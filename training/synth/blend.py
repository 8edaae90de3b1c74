"""Alpha compositing of a cut-out onto a cover, tracking which pixels it hides."""

from __future__ import annotations

import numpy as np


def blend(
    cover: np.ndarray, occ: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, y: int, x: int
) -> None:
    """Alpha-blend ``rgb`` at ``(y, x)`` into ``cover`` in place (clipped); mark ``occ``."""
    H, W = occ.shape
    y0, x0, y1, x1 = max(0, y), max(0, x), min(H, y + alpha.shape[0]), min(W, x + alpha.shape[1])
    if y1 <= y0 or x1 <= x0:
        return
    a = alpha[y0 - y : y1 - y, x0 - x : x1 - x, None]
    src = rgb[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.float32)
    dst = cover[y0:y1, x0:x1].astype(np.float32)
    cover[y0:y1, x0:x1] = (a * src + (1 - a) * dst).astype(np.uint8)
    occ[y0:y1, x0:x1] |= a[..., 0] > 0.5
