"""Extra cover-like training identities recombined from parts of training covers.

Generalising to unseen covers needs many distinct covers; each recombination below is a new
image the network must tell apart from its sources, so it counts as a new identity.
"""

from __future__ import annotations

import cv2
import numpy as np

RECIPES = ("hflip", "vflip", "rot90", "quadrants", "mosaic2", "mosaic4", "zoom")


def _quadrants(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h = a.shape[0] // 2
    q = [a[:h, :h], a[:h, h:], a[h:, :h], a[h:, h:]]
    perm = rng.permutation(4)
    while (perm == np.arange(4)).all():
        perm = rng.permutation(4)
    q = [q[i] for i in perm]
    return np.concatenate([np.concatenate(q[:2], 1), np.concatenate(q[2:], 1)], 0)


def _mosaic2(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cut = int(rng.uniform(0.3, 0.7) * a.shape[0])
    out = a.copy()
    if rng.random() < 0.5:
        out[:, cut:] = b[:, cut:]
    else:
        out[cut:] = b[cut:]
    return out


def _mosaic4(arrs: list[np.ndarray]) -> np.ndarray:
    s = arrs[0].shape[0]
    small = [cv2.resize(a, (s // 2, s // 2), interpolation=cv2.INTER_AREA) for a in arrs]
    top, bottom = np.concatenate(small[:2], 1), np.concatenate(small[2:], 1)
    return cv2.resize(np.concatenate([top, bottom], 0), (s, s))


def _zoom(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    s = a.shape[0]
    c = int(rng.uniform(0.5, 0.75) * s)
    y, x = int(rng.integers(0, s - c + 1)), int(rng.integers(0, s - c + 1))
    return cv2.resize(a[y : y + c, x : x + c], (s, s), interpolation=cv2.INTER_LINEAR)


def recombine(covers: list[np.ndarray], n: int, seed: int) -> list[np.ndarray]:
    """``n`` new square covers (same size as the inputs), deterministic for a seed."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        recipe = RECIPES[int(rng.integers(len(RECIPES)))]
        picks = [covers[int(i)] for i in rng.choice(len(covers), size=4, replace=False)]
        a = picks[0]
        if recipe == "hflip":
            img = a[:, ::-1]
        elif recipe == "vflip":
            img = a[::-1]
        elif recipe == "rot90":
            img = np.rot90(a, int(rng.integers(1, 4)))
        elif recipe == "quadrants":
            img = _quadrants(a, rng)
        elif recipe == "mosaic2":
            img = _mosaic2(a, picks[1], rng)
        elif recipe == "mosaic4":
            img = _mosaic4(picks)
        else:
            img = _zoom(a, rng)
        out.append(np.ascontiguousarray(img))
    return out
