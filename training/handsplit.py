"""Hand photos split by subject into a training pool and an evaluation-only pool.

HGR file names encode the dataset and the subject (``training_1_P_hgr1_id03_2.jpg``:
dataset ``hgr1``, subject ``id03``). Photos of one person share skin tone, sleeves, lighting
and background, so the split is by subject, never by photo: no person whose hands the
training synthesis pastes ever appears in an out-of-distribution evaluation query.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

_SUBJECT = re.compile(r"(hgr[0-9a-z]+)_(id\d+)", re.IGNORECASE)

# Pinned, not drawn at run time: the pools must not move when files are added or the seed
# changes. 5 of the 20 subjects (49 of the 178 photos): two hgr1 subjects (31 photos) and
# three hgr2B subjects (18 photos), so both capture set-ups are represented in evaluation.
EVAL_SUBJECTS: frozenset[str] = frozenset({
    "hgr1_id07", "hgr1_id08", "hgr2b_id10", "hgr2b_id11", "hgr2b_id12",
})

TRAIN, EVAL = "train", "eval"


def subject_of(name: str) -> str:
    """``hgr1_id03`` for ``training_1_P_hgr1_id03_2.jpg``; the stem itself when no match."""
    m = _SUBJECT.search(name)
    return f"{m.group(1)}_{m.group(2)}".lower() if m else Path(name).stem.lower()


def pool_of(name: str) -> str:
    return EVAL if subject_of(name) in EVAL_SUBJECTS else TRAIN


def hand_images(hands_dir: Path, pool: str) -> list[Path]:
    """The photos of ``hands_dir/images`` in ``pool`` (``train`` or ``eval``), sorted."""
    if pool not in (TRAIN, EVAL):
        raise ValueError(f"pool must be {TRAIN!r} or {EVAL!r}, not {pool!r}")
    return [p for p in sorted((hands_dir / "images").glob("*.jpg")) if pool_of(p.name) == pool]


def cut_out(img_path: Path, mask_path: Path, arm_widths: float, blur: int,
            max_side: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The hand of one photo as (rgb uint8, alpha float32 in [0, 1]), or None when unusable.

    HGR arms enter from the bottom of the frame: the cut keeps the hand and ``arm_widths``
    hand-widths of forearm. Each pool's generator picks its own cut, blur and size.
    """
    img = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
    mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
    if img is None or mask is None or mask.max() < 128:
        return None
    ys, xs = np.nonzero(mask > 127)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    y1 = min(y1, y0 + max(8, int(arm_widths * (x1 - x0))))
    rgb = cv2.cvtColor(img[y0:y1, x0:x1], cv2.COLOR_BGR2RGB)
    alpha = cv2.GaussianBlur(mask[y0:y1, x0:x1].astype(np.float32) / 255.0, (blur, blur), 0)
    scale = max_side / max(rgb.shape[:2])
    if scale < 1:
        size = (max(1, int(rgb.shape[1] * scale)), max(1, int(rgb.shape[0] * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    return rgb, alpha


def cut_outs(hands_dir: Path, pool: str, arm_widths: float, blur: int, max_side: int
             ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(photo name, rgb, alpha) of every usable photo of ``pool`` with its ``masks/X.png``."""
    out = []
    for p in hand_images(hands_dir, pool):
        cut = cut_out(p, hands_dir / "masks" / (p.stem + ".png"), arm_widths, blur, max_side)
        if cut is not None:
            out.append((p.name, *cut))
    return out
