"""Cover in, CCTV query out: occluders (paste or GLIGEN), then the camera; seeded."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from training.synth.camera import LEVELS, CameraParams, camera
from training.synth.hands import HandCutout, paste_hand
from training.synth.stickers import paste_sticker

WORK_SIZE = 256  # sleeve side the occluders and camera work at; queries end up 64-224 px anyway


@dataclass
class Query:
    image: Image.Image
    level: str
    occluded_fraction: float
    occluders: list[str] = field(default_factory=list)

    def meta(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "occluded_fraction": round(self.occluded_fraction, 4),
            "occluders": "+".join(self.occluders) or "none",
            "width": self.image.width,
            "height": self.image.height,
        }


def cover_array(cover: Image.Image, size: int = WORK_SIZE) -> np.ndarray:
    """The sleeve as a square RGB uint8 array at the working size."""
    arr = np.asarray(cover.convert("RGB"))
    return cv2.resize(arr, (size, size), interpolation=cv2.INTER_AREA)


class QuerySynth:
    """Makes CCTV-like queries of one difficulty level from clean covers."""

    def __init__(
        self,
        level: str = "medium",
        hands: list[HandCutout] | None = None,
        occluder: str = "paste",
        gligen_model: Path | None = None,
        work_size: int = WORK_SIZE,
        gligen: Any = None,
        gligen_device: str = "cpu",
        gligen_steps: int = 25,
    ) -> None:
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}; choose from {sorted(LEVELS)}")
        if occluder not in ("paste", "gligen"):
            raise ValueError("occluder must be 'paste' or 'gligen'")
        self.level = level
        self.params: CameraParams = LEVELS[level]
        self.hands = hands or []
        self.work_size = work_size
        self.gligen: Any = gligen  # an already loaded GligenOccluder may be shared by levels
        if occluder == "gligen" and self.gligen is None:
            if gligen_model is None:
                raise ValueError("occluder 'gligen' needs gligen_model (a local checkpoint dir)")
            # Imported lazily: diffusers is heavy and only this backend needs it.
            from training.synth.gligen import GligenOccluder

            self.gligen = GligenOccluder(gligen_model, device=gligen_device, steps=gligen_steps)

    def __call__(self, cover: Image.Image | np.ndarray, rng: np.random.Generator) -> Query:
        arr = cover if isinstance(cover, np.ndarray) else cover_array(cover, self.work_size)
        arr = arr.copy()
        occ = np.zeros(arr.shape[:2], bool)
        names: list[str] = []
        if rng.random() < self.params.occluded_prob:
            target = float(rng.uniform(*self.params.occlusion))
            arr, names = self._occlude(arr, occ, target, rng)
        out = camera(arr, self.params, rng)
        mode = "L" if out.ndim == 2 else "RGB"
        return Query(Image.fromarray(out, mode), self.level, float(occ.mean()), names)

    def _occlude(
        self, arr: np.ndarray, occ: np.ndarray, target: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, list[str]]:
        """Add occluders until about ``target`` of the sleeve is hidden, never far beyond it."""
        if self.gligen is not None:
            img = self.gligen(Image.fromarray(arr), rng)
            out = np.asarray(img.convert("RGB").resize(arr.shape[1::-1]))
            box = getattr(self.gligen, "last_box", None)  # (x0, y0, x1, y1): the inpainted box
            if box is not None:
                occ[box[1] : box[3], box[0] : box[2]] = True
            else:
                occ |= np.abs(out.astype(np.int16) - arr.astype(np.int16)).max(axis=2) > 12
            return out.copy(), ["gligen"]
        names: list[str] = []
        cap = min(0.6, target + 0.1)
        for _ in range(6):
            if occ.mean() >= target:
                break
            trial, trial_occ = arr.copy(), occ.copy()
            remaining = target - occ.mean()
            if self.hands and rng.random() < 0.6:
                hand = self.hands[int(rng.integers(len(self.hands)))]
                size = float(np.clip(np.sqrt(remaining) * rng.uniform(1.0, 1.6), 0.2, 0.6))
                paste_hand(trial, trial_occ, hand, rng, size)
                kind = "hand"
            else:
                size = float(np.clip(np.sqrt(remaining) * rng.uniform(0.7, 1.1), 0.08, 0.3))
                paste_sticker(trial, trial_occ, rng, size)
                kind = "sticker"
            if trial_occ.mean() <= cap:  # reject an occluder that overshoots the share
                arr, names = trial, [*names, kind]
                occ[:] = trial_occ
        return arr, names


def make_queries(
    covers: list[Image.Image], synth: QuerySynth, seed: int, per_cover: int = 1
) -> list[tuple[int, Query]]:
    """Reproducible queries: query j of cover i uses its own RNG stream ``(seed, i, j)``."""
    out = []
    for i, cover in enumerate(covers):
        arr = cover_array(cover, synth.work_size)
        for j in range(per_cover):
            out.append((i, synth(arr, np.random.default_rng([seed, i, j]))))
    return out
