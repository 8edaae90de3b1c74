"""Open-set decision: is the first match *the* album in the crop, and how sure are we?

A ranking always has a first match, even for a sleeve that is not in the catalog (a customer's
own record, a bag, a poster). ``identified`` is that match only when it clears the acceptance
rule below; ``confidence`` is the measured precision of accepted answers in the evidence bin the
query fell in (0 when nothing is identified).

Thresholds belong to a model: ``cratewatch calibrate`` measures them on held-out covers that are
not in the catalog and writes them into the ``calibration`` block of the model's JSON sidecar;
settings may override single values. Without a calibration block, ``DEFAULT`` applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field


class Calibration(BaseModel):
    """Gate and acceptance thresholds of one model (the sidecar's ``calibration`` block)."""

    # Gate: the embedding alone answers (no local features) when the top cosine score and its
    # margin over the second album both clear these.
    gate_score: float = Field(default=2.0, description="top cosine to skip local features")
    gate_margin: float = Field(default=2.0, description="top1 - top2 cosine to skip them")
    # Acceptance of a verified answer: RANSAC-homography inliers of the first match.
    accept_inliers: int = Field(default=15, ge=1, description="inliers to accept a match")
    # ... spread over at least this share of the cover's 4x4 grid: chance agreements (shared
    # fonts, logos) cluster in one region, a true view of the sleeve spreads over it.
    accept_coverage: float = Field(default=0.3, ge=0, le=1,
                                   description="share of cover grid cells with an inlier")
    # Precision measured per inlier bin, for ``confidence``: [(min_inliers, precision), ...]
    # sorted ascending. Empty = the uncalibrated ramp in ``confidence_for``.
    inlier_precision: list[tuple[int, float]] = Field(default_factory=list)
    gate_precision: float = Field(default=0.0, ge=0, le=1,
                                  description="precision of gate-accepted answers")
    # Loose framing (service/rectify.py): a first match whose own homography localised its
    # sleeve is accepted when the rectified sleeve's embedding has this cosine to its cover.
    # Above 1 (the default): closed, as in an uncalibrated model.
    rect_cosine: float = Field(default=2.0, description="rectified-sleeve cosine to accept")
    rect_precision: float = Field(default=0.0, ge=0, le=1,
                                  description="precision of rectified-sleeve answers")
    measured: dict[str, Any] = Field(default_factory=dict, description="provenance, figures")


# Before calibration the gate is closed (cosines never exceed 1) and a verified answer needs
# 15 inliers (the re-rank already treats 12 as the least that is not noise) spread over 30 % of
# the cover (on generated covers that share one font and layout, strangers reach 61 inliers
# but never more than 25 % of the grid; perspective-warped 110 px views of own covers 38-50 %).
DEFAULT = Calibration()


@dataclass(frozen=True)
class Decision:
    identified: str | None
    confidence: float
    decided_by: str  # "embedding" (gate: local features not run) or "verified"


@dataclass
class Evidence:
    """What the pipeline knows about its first match."""

    album_id: str | None
    score: float  # cosine of the first match (embedding)
    margin: float  # top1 - top2 cosine
    inliers: int  # RANSAC inliers of the first match (0 when not verified)
    coverage: float  # share of the first match's cover grid holding an inlier
    verified: bool  # local features were run
    rect_cosine: float = 0.0  # the first match's rectified sleeve vs its cover (0: none)
    extra: dict[str, float] = field(default_factory=dict)


def gate_open(cal: Calibration, score: float, margin: float) -> bool:
    """The embedding alone is confident enough: skip the local-feature path."""
    return score >= cal.gate_score and margin >= cal.gate_margin


def confidence_for(cal: Calibration, inliers: int) -> float:
    """Measured precision of accepted answers with this many inliers (bins from calibrate)."""
    if cal.inlier_precision:
        best = 0.0
        for lo, precision in cal.inlier_precision:
            if inliers >= lo:
                best = precision
        return best
    # Uncalibrated: a ramp from 0.5 at the threshold to 0.99 at three times it.
    ramp = (inliers - cal.accept_inliers) / max(1, 2 * cal.accept_inliers)
    return round(min(0.99, 0.5 + 0.49 * max(0.0, ramp)), 4)


def decide(cal: Calibration, ev: Evidence) -> Decision:
    """Apply the acceptance rule to the first match's evidence."""
    if ev.album_id is None:
        return Decision(None, 0.0, "verified" if ev.verified else "embedding")
    if not ev.verified:
        if gate_open(cal, ev.score, ev.margin):
            return Decision(ev.album_id, cal.gate_precision or 0.99, "embedding")
        return Decision(None, 0.0, "embedding")
    if ev.inliers >= cal.accept_inliers and ev.coverage >= cal.accept_coverage:
        return Decision(ev.album_id, confidence_for(cal, ev.inliers), "verified")
    if ev.rect_cosine >= cal.rect_cosine:
        return Decision(ev.album_id, cal.rect_precision or 0.5, "verified")
    return Decision(None, 0.0, "verified")


def with_overrides(cal: Calibration, **values: float | int | None) -> Calibration:
    """Settings that are set (not None) replace the model's calibrated values."""
    updates = {k: v for k, v in values.items() if v is not None}
    return cal.model_copy(update=updates) if updates else cal
