"""Real hand cut-outs (image + mask) pasted onto a sleeve, entering from its edges."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from training.handsplit import TRAIN, cut_outs
from training.synth.blend import blend

# Hands are stored small: they end up at most ~half a cover wide at the working resolution.
_MAX_SIDE = 256


@dataclass(frozen=True)
class HandCutout:
    rgb: np.ndarray  # (h, w, 3) uint8
    alpha: np.ndarray  # (h, w) float32 in [0, 1]
    source: str = ""  # the photo's file name (the hand-split tests check it)


def load_hands(hands_dir: Path) -> list[HandCutout]:
    """Every ``images/X.jpg`` of the *training* pool with its ``masks/X.png`` (hand = white).

    The evaluation subjects (``training.handsplit.EVAL_SUBJECTS``) are never loaded here:
    they belong to the OOD generator (``training.ood``) only.
    """
    # a sleeve is held near its edge, not with a whole arm across it
    cuts = cut_outs(hands_dir, TRAIN, arm_widths=1.3, blur=3, max_side=_MAX_SIDE)
    return [HandCutout(rgb=rgb, alpha=alpha, source=name) for name, rgb, alpha in cuts]


def _jitter_colour(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    gain = rng.uniform(0.7, 1.25) * rng.uniform(0.9, 1.1, size=3)
    bias = rng.uniform(-20, 20)
    return np.clip(rgb.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)


def _rotate(rgb: np.ndarray, alpha: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    h, w = alpha.shape
    mat = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(mat[0, 0]), abs(mat[0, 1])
    nw, nh = int(h * sin + w * cos) + 1, int(h * cos + w * sin) + 1
    mat[0, 2] += nw / 2 - w / 2
    mat[1, 2] += nh / 2 - h / 2
    rgb_r = cv2.warpAffine(rgb, mat, (nw, nh), flags=cv2.INTER_LINEAR)
    alpha_r = cv2.warpAffine(alpha, mat, (nw, nh), flags=cv2.INTER_LINEAR)
    return rgb_r, alpha_r


# Rotation (degrees, counter-clockwise) that turns a wrist-at-bottom hand to enter from an edge.
_EDGE_ANGLE = {"bottom": 0.0, "left": -90.0, "top": 180.0, "right": 90.0}


def paste_hand(
    cover: np.ndarray, occ: np.ndarray, hand: HandCutout, rng: np.random.Generator, size_frac: float
) -> None:
    """Paste ``hand`` in place onto ``cover`` (RGB uint8) and mark its pixels in ``occ`` (bool)."""
    side = cover.shape[0]
    edge = str(rng.choice(list(_EDGE_ANGLE)))
    rgb, alpha = _jitter_colour(hand.rgb, rng), hand.alpha
    if rng.random() < 0.5:
        rgb, alpha = rgb[:, ::-1], alpha[:, ::-1]
    scale = size_frac * side / max(rgb.shape[:2])
    size = (max(2, int(rgb.shape[1] * scale)), max(2, int(rgb.shape[0] * scale)))
    rgb = cv2.resize(np.ascontiguousarray(rgb), size, interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(np.ascontiguousarray(alpha), size, interpolation=cv2.INTER_AREA)
    rgb, alpha = _rotate(rgb, alpha, _EDGE_ANGLE[edge] + rng.uniform(-30, 30))
    h, w = alpha.shape
    along = int(rng.uniform(0.05, 0.95) * side)
    # Push the cut-out partly past the edge so the wrist end leaves the sleeve.
    depth = int(rng.uniform(0.45, 0.8) * (h if edge in ("top", "bottom") else w))
    if edge == "bottom":
        y, x = side - depth, along - w // 2
    elif edge == "top":
        y, x = depth - h, along - w // 2
    elif edge == "left":
        y, x = along - h // 2, depth - w
    else:
        y, x = along - h // 2, side - depth
    blend(cover, occ, rgb, alpha, y, x)
