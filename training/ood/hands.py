"""Hands of the evaluation subjects only, holding the sleeve in the scene (not pasted flat).

The training synthesis pastes hands of the training subjects onto the flat sleeve before the
camera; here hands of the held-out subjects (``training.handsplit.EVAL_SUBJECTS``) are
composited in scene coordinates after the perspective, gripping a sleeve edge from outside,
so the hand is not warped with the sleeve and is often partly outside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from training.handsplit import EVAL, cut_outs

_MAX_SIDE = 320


@dataclass(frozen=True)
class EvalHand:
    rgb: np.ndarray  # (h, w, 3) uint8, wrist towards the bottom row
    alpha: np.ndarray  # (h, w) float32 in [0, 1]
    source: str  # the photo's file name: the split tests check it


def load_eval_hands(hands_dir: Path) -> list[EvalHand]:
    """Cut-outs of the evaluation pool of ``hands_dir`` (``images/*.jpg`` + ``masks/*.png``)."""
    # a longer piece of forearm than the training cut-outs keep (1.8 vs 1.3 widths)
    cuts = cut_outs(hands_dir, EVAL, arm_widths=1.8, blur=5, max_side=_MAX_SIDE)
    return [EvalHand(rgb=rgb, alpha=alpha, source=name) for name, rgb, alpha in cuts]


def composite(canvas: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, y: int, x: int
              ) -> np.ndarray:
    """Alpha-composite in place at ``(y, x)`` (clipped); return the full-canvas coverage mask."""
    H, W = canvas.shape[:2]
    cover = np.zeros((H, W), np.float32)
    y0, x0, y1, x1 = max(0, y), max(0, x), min(H, y + alpha.shape[0]), min(W, x + alpha.shape[1])
    if y1 <= y0 or x1 <= x0:
        return cover
    a = alpha[y0 - y : y1 - y, x0 - x : x1 - x]
    src = rgb[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.float32)
    dst = canvas[y0:y1, x0:x1].astype(np.float32)
    canvas[y0:y1, x0:x1] = (a[..., None] * src + (1 - a[..., None]) * dst).astype(np.uint8)
    cover[y0:y1, x0:x1] = a
    return cover


def grip(canvas: np.ndarray, quad: np.ndarray, hand: EvalHand, rng: np.random.Generator,
         reach: float) -> np.ndarray:
    """A hand holding the sleeve (corners ``quad``, 4x2) at a random edge point, fingers
    reaching ``reach`` of the sleeve side inwards; returns the hand's coverage mask."""
    i = int(rng.integers(4))
    a, b = quad[i], quad[(i + 1) % 4]
    point = a + (b - a) * rng.uniform(0.15, 0.85)
    centre = quad.mean(axis=0)
    inward = (centre - point) / max(1e-6, float(np.linalg.norm(centre - point)))
    side = float(np.linalg.norm(b - a))
    # tone of a different lamp: warm or cool cast, darker or brighter
    tone = rng.uniform(0.6, 1.2) * rng.uniform(0.85, 1.15, size=3)
    lit = np.clip(hand.rgb * tone, 0, 255).astype(np.uint8)
    scale = reach * side * rng.uniform(1.4, 2.0) / hand.rgb.shape[0]
    size = (max(2, int(hand.rgb.shape[1] * scale)), max(2, int(hand.rgb.shape[0] * scale)))
    rgb: np.ndarray = cv2.resize(lit, size, interpolation=cv2.INTER_AREA)
    alpha: np.ndarray = cv2.resize(hand.alpha, size, interpolation=cv2.INTER_AREA)
    # fingertips (top row) point inwards: rotate the wrist-down cut-out to face ``inward``
    angle = float(np.degrees(np.arctan2(inward[0], -inward[1]))) + rng.uniform(-20, 20)
    h, w = alpha.shape
    length = h  # fingertip-to-wrist, before the rotation
    mat = cv2.getRotationMatrix2D((w / 2, h / 2), -angle, 1.0)
    cos, sin = abs(mat[0, 0]), abs(mat[0, 1])
    nw, nh = int(h * sin + w * cos) + 1, int(h * cos + w * sin) + 1
    mat[0, 2] += nw / 2 - w / 2
    mat[1, 2] += nh / 2 - h / 2
    rgb = cv2.warpAffine(rgb, mat, (nw, nh), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(alpha, mat, (nw, nh), flags=cv2.INTER_LINEAR)
    # the fingertips sit ``reach`` inside the edge, the wrist leaves the sleeve outwards
    tip = point + inward * reach * side
    cx, cy = tip - inward * (length / 2)
    return composite(canvas, rgb, alpha, int(cy - nh / 2), int(cx - nw / 2))
