"""OOD queries: sticker on the sleeve, 3-D pose, framing in a shop scene, hands, camera."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image

from training.ood import assets, camera
from training.ood.hands import EvalHand, composite, grip

WORK = 256  # flat sleeve side before the pose; queries end up 56-200 px on their short side
FRAMINGS = ("tight", "loose")
LOOSE_AREA = (0.40, 0.70)  # sleeve share of the crop area in loose framing (phone photos)


@dataclass(frozen=True)
class OODLevel:
    max_angle: float  # degrees of yaw/pitch (roll up to half of it)
    tight_area: tuple[float, float]  # sleeve share of the crop area, tight framing
    short_side: tuple[int, int]
    colour_prob: float  # otherwise grey; IR night takes its share first
    ir_prob: float
    interlace_prob: float
    interlace_shift: tuple[int, int]
    glare_prob: float
    glare: tuple[float, float]
    blur_radius: tuple[float, float]  # disk radius in output pixels
    gain: tuple[float, float]  # shot-noise gain (grey levels per photo-electron)
    jpeg: tuple[int, int]  # quality of the stream encode
    cast: float  # white-balance error
    hand_prob: float
    max_hands: int
    reach: tuple[float, float]  # how far fingers reach into the sleeve, share of its side
    sticker_prob: float
    sticker: tuple[float, float]  # sticker width, share of the sleeve side


LEVELS: dict[str, OODLevel] = {
    "easy": OODLevel(10, (0.75, 0.95), (120, 200), 0.5, 0.0, 0.1, (1, 2), 0.15, (0.1, 0.3),
                     (0.0, 0.8), (0.3, 1.0), (55, 85), 0.05, 0.4, 1, (0.08, 0.2), 0.3,
                     (0.12, 0.22)),
    "medium": OODLevel(20, (0.65, 0.9), (72, 140), 0.4, 0.15, 0.25, (1, 3), 0.35, (0.15, 0.45),
                       (0.4, 1.5), (0.8, 2.5), (30, 60), 0.12, 0.7, 2, (0.15, 0.35), 0.5,
                       (0.15, 0.28)),
    "hard": OODLevel(30, (0.55, 0.85), (56, 100), 0.3, 0.3, 0.4, (2, 4), 0.5, (0.25, 0.6),
                     (0.8, 2.0), (1.5, 4.0), (18, 40), 0.2, 0.9, 2, (0.2, 0.45), 0.7,
                     (0.2, 0.35)),
}


@dataclass
class OODQuery:
    image: Image.Image
    meta: dict[str, Any] = field(default_factory=dict)


def _u(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(rng.uniform(r[0], r[1]))


def _quad_area(q: np.ndarray) -> float:
    x, y = q[:, 0], q[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


class OODSynth:
    """Makes evaluation-only queries of one level and framing from clean covers."""

    def __init__(self, level: str, framing: str = "tight",
                 hands: list[EvalHand] | None = None) -> None:
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}; choose from {sorted(LEVELS)}")
        if framing not in FRAMINGS:
            raise ValueError(f"unknown framing {framing!r}; choose from {FRAMINGS}")
        self.level, self.framing, self.p = level, framing, LEVELS[level]
        self.hands = hands or []

    def __call__(self, cover: Image.Image | np.ndarray, rng: np.random.Generator) -> OODQuery:
        p = self.p
        arr = np.asarray(cover.convert("RGB")) if isinstance(cover, Image.Image) else cover
        flat = cv2.resize(arr, (WORK, WORK), interpolation=cv2.INTER_AREA)
        flat_occ = np.zeros((WORK, WORK), np.float32)
        names: list[str] = []
        if rng.random() < p.sticker_prob:
            rgb, alpha, kind = assets.sticker(rng, int(_u(rng, p.sticker) * WORK))
            y = int(rng.uniform(-0.1, 0.9) * WORK)
            x = int(rng.uniform(-0.1, 0.9) * WORK)
            flat_occ = np.maximum(flat_occ, composite(flat, rgb, alpha, y, x))
            names.append(f"sticker-{kind}")
        scene, sleeve, occ, quad, meta = self._pose_and_frame(flat, flat_occ, rng)
        if self.hands and rng.random() < p.hand_prob:
            for _ in range(int(rng.integers(1, p.max_hands + 1))):
                hand = self.hands[int(rng.integers(len(self.hands)))]
                occ = np.maximum(occ, grip(scene, quad, hand, rng, _u(rng, p.reach)))
                names.append("hand")
        hidden = float(((occ > 0.5) & sleeve).sum() / max(1, sleeve.sum()))
        out, mode = self._camera(scene, rng)
        meta.update(level=self.level, framing=self.framing, mode=mode,
                    occluded_fraction=round(hidden, 4), occluders="+".join(names) or "none",
                    width=out.shape[1], height=out.shape[0])
        return OODQuery(Image.fromarray(out, "L" if out.ndim == 2 else "RGB"), meta)

    def _pose_and_frame(self, flat: np.ndarray, flat_occ: np.ndarray, rng: np.random.Generator
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        p = self.p
        yaw, pitch = (float(rng.uniform(-p.max_angle, p.max_angle)) for _ in range(2))
        roll = float(rng.uniform(-p.max_angle / 2, p.max_angle / 2))
        quad = camera.rotation_quad(WORK, yaw, pitch, roll, float(rng.uniform(1.5, 3.0)))
        bw, bh = quad.max(axis=0)
        share = _u(rng, LOOSE_AREA if self.framing == "loose" else p.tight_area)
        area = _quad_area(quad) / share
        aspect = float(rng.uniform(0.8, 1.25))
        W = max(int(np.sqrt(area * aspect)), int(np.ceil(bw)) + 2)
        H = max(int(area / W), int(np.ceil(bh)) + 2)
        quad = quad + np.array([rng.uniform(0, W - bw), rng.uniform(0, H - bh)], np.float32)
        src = np.array([[0, 0], [WORK, 0], [WORK, WORK], [0, WORK]], np.float32)
        mat = cv2.getPerspectiveTransform(src, quad)
        scene, kind = assets.background(rng, H, W)
        warped = cv2.warpPerspective(flat, mat, (W, H), flags=cv2.INTER_LINEAR)
        keep = cv2.warpPerspective(np.ones((WORK, WORK), np.float32), mat, (W, H))
        occ = cv2.warpPerspective(flat_occ, mat, (W, H))
        scene = (keep[..., None] * warped + (1 - keep[..., None]) * scene).astype(np.uint8)
        sleeve = keep > 0.5
        meta = {"yaw": round(yaw, 1), "pitch": round(pitch, 1), "roll": round(roll, 1),
                "sleeve_area": round(float(sleeve.mean()), 4), "background": kind}
        return scene, sleeve, occ, quad, meta

    def _camera(self, scene: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        p = self.p
        img = camera.lighting(scene, rng, p.cast)
        if rng.random() < p.glare_prob:
            img = camera.streak_glare(img, _u(rng, p.glare), rng)
        r = rng.random()
        if r < p.ir_prob:
            img, mode = camera.ir_night(img, rng), "ir"
        elif r < p.ir_prob + (1 - p.ir_prob) * p.colour_prob:
            mode = "colour"
        else:
            img, mode = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), "grey"
        h, w = img.shape[:2]
        s = int(rng.integers(p.short_side[0], p.short_side[1] + 1)) / min(h, w)
        img = cv2.resize(img, (max(8, round(w * s)), max(8, round(h * s))),
                         interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        img = camera.disk_blur(img, _u(rng, p.blur_radius))
        if rng.random() < p.interlace_prob:
            shift = int(rng.integers(p.interlace_shift[0], p.interlace_shift[1] + 1))
            img = camera.interlace(img, rng, shift)
        img = camera.sensor(img, rng, _u(rng, p.gain))
        return camera.codec(img, rng, p.jpeg), mode


def make_set(covers: list[np.ndarray], n: int, levels: list[str], framing: str, seed: int,
             hands: list[EvalHand]) -> list[tuple[int, OODQuery]]:
    """Query ``i`` shows cover ``i % C`` at level ``levels[(i // C) % L]`` with RNG stream
    ``(seed, i)``: every cover gets every level, and any query can be remade alone. The
    ``ood`` CLI and the per-epoch OOD validation of ``fit`` both use this."""
    synths = {lv: OODSynth(lv, framing, hands) for lv in levels}
    out = []
    for i in range(n):
        ci = i % len(covers)
        level = levels[(i // len(covers)) % len(levels)]
        out.append((ci, synths[level](covers[ci], np.random.default_rng([seed, i]))))
    return out
