"""What a fit run trains and validates on: split, identities, in-distribution and OOD
validation tensors (the OOD ones made by ``training.ood``, never trained on)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from service.demo import fake_album, make_cover
from service.modelinfo import ModelInfo
from service.preprocess import batch_inputs
from training.catalog import load_catalog, open_cover, save_split, split_albums
from training.config import FitConfig
from training.ood.cli import PRESETS
from training.ood.generator import make_set
from training.ood.hands import load_eval_hands
from training.paths import shared_data_dir
from training.recombine import recombine
from training.synth.hands import HandCutout, load_hands
from training.synth.pipeline import QuerySynth, cover_array

OOD_LEVELS = ["easy", "medium", "hard"]


@dataclass
class ValSet:
    """Preprocessed queries, their true catalog rows and their level (for per-level rows)."""

    x: torch.Tensor
    truth: np.ndarray
    levels: list[str]


@dataclass
class FitData:
    train: list[np.ndarray]  # training identities (covers + recombinations), RGB arrays
    hands: list[HandCutout]
    catalog_x: torch.Tensor  # every catalog cover, preprocessed
    id_val: ValSet
    ood_val: ValSet  # tight framing, every level
    ood_loose: ValSet  # loose framing, every level
    split: dict[str, list[str]]


def _hands_dir(cfg: FitConfig) -> Path | None:
    if cfg.hands is not None:
        return cfg.hands
    root = shared_data_dir()
    return root / "hands" if root and (root / "hands").is_dir() else None


def _ood(arrays: list[np.ndarray], rows: list[int], info: ModelInfo, framing: str,
         per_cover: int, hands_dir: Path | None) -> ValSet:
    if not arrays:
        return ValSet(torch.zeros(0), np.zeros(0, np.int64), [])
    hands = load_eval_hands(hands_dir) if hands_dir else []
    seed = PRESETS["ood-val"][1]
    made = make_set(arrays, per_cover * len(arrays) * len(OOD_LEVELS), OOD_LEVELS, framing,
                    seed, hands)
    return ValSet(torch.from_numpy(batch_inputs([q.image for _, q in made], info)),
                  np.asarray([rows[ci] for ci, _ in made]), [q.meta["level"] for _, q in made])


def generated_covers(n: int, size: int, seed: int) -> list[np.ndarray]:
    """Procedural cover-like identities (gradient, shapes, artist/title text)."""
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, 77, i])
        out.append(np.asarray(make_cover(rng, *fake_album(rng), size).convert("RGB")))
    return out


def build(cfg: FitConfig, info: ModelInfo) -> FitData:
    covers = load_catalog(cfg.catalog)
    split = split_albums([c.album_id for c in covers], cfg.n_test, cfg.n_val, cfg.seed,
                         cfg.n_ood_val)
    save_split(split, cfg.out / "split.json")
    arrays = {c.album_id: cover_array(open_cover(c), cfg.work_size) for c in covers}
    train = [arrays[a] for a in split["train"]]
    extra = recombine(train, int(cfg.extra_factor * len(train)), cfg.seed)
    extra += generated_covers(int(cfg.generated_factor * len(train)), cfg.work_size, cfg.seed)
    hands_dir = _hands_dir(cfg)
    hands = load_hands(hands_dir) if hands_dir else []  # the training pool only
    ids = [c.album_id for c in covers]
    row = {a: i for i, a in enumerate(ids)}
    catalog_x = torch.from_numpy(batch_inputs([Image.fromarray(arrays[a]) for a in ids], info))
    synth = QuerySynth("medium", hands=hands, work_size=cfg.work_size)
    qs, truth = [], []
    for i, a in enumerate(split["val"]):
        for j in range(cfg.val_per_cover):
            qs.append(synth(arrays[a], np.random.default_rng([cfg.seed, 99, i, j])).image)
            truth.append(row[a])
    id_val = ValSet(torch.from_numpy(batch_inputs(qs, info)), np.asarray(truth),
                    ["medium"] * len(truth))
    ood_arrays = [arrays[a] for a in split["ood_val"]]
    ood_rows = [row[a] for a in split["ood_val"]]
    ood = _ood(ood_arrays, ood_rows, info, "tight", cfg.ood_val_per_cover, hands_dir)
    loose = _ood(ood_arrays, ood_rows, info, "loose", 1, hands_dir)
    print(f"data: {len(train)} train covers + {len(extra)} recombined/generated identities, "
          f"{len(split['val'])} val, {len(split['ood_val'])} ood_val "
          f"({len(ood.truth)} tight + {len(loose.truth)} loose OOD queries), "
          f"{len(split['test'])} test (held out); {len(hands)} training hands", flush=True)
    return FitData(train + extra, hands, catalog_x, id_val, ood, loose, split)

