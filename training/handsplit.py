"""Hand photos split by subject into a training pool and an evaluation-only pool.

HGR file names encode the dataset and the subject (``training_1_P_hgr1_id03_2.jpg``:
dataset ``hgr1``, subject ``id03``). Photos of one person share skin tone, sleeves, lighting
and background, so the split is by subject, never by photo: no person whose hands the
training synthesis pastes ever appears in an out-of-distribution evaluation query.
"""

from __future__ import annotations

import re
from pathlib import Path

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
