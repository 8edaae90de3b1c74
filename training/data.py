"""Training views made on the fly: every epoch draws new degradations of every identity."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from service.modelinfo import ModelInfo
from service.preprocess import to_model_input
from training.synth.hands import HandCutout
from training.synth.pipeline import QuerySynth
from training.synth.wide import WideSynth

# Mix of difficulty levels among the degraded views; medium is the target, hard teaches
# robustness, easy keeps the early epochs learnable.
LEVEL_MIX = {"easy": 0.25, "medium": 0.45, "hard": 0.3}
# ``synth="wide"``: this share of the degraded views is domain-randomised (``WideSynth``); the
# rest keep the classic levels so the target conditions stay well covered (``--wide-share``).
WIDE_SHARE = 0.7


class TrainViews(Dataset[tuple[torch.Tensor, int]]):
    """Flat index ``identity * K + view``: view 0 is the clean cover, views 1.. are queries.

    Images go through ``service.preprocess.to_model_input``, so training sees exactly the
    service's preprocessing.
    """

    def __init__(
        self,
        covers: list[np.ndarray],
        k: int,
        info: ModelInfo,
        hands: list[HandCutout],
        seed: int = 0,
        level_mix: dict[str, float] | None = None,
        synth: str = "classic",
        synth_off: frozenset[str] = frozenset(),
        wide_share: float = WIDE_SHARE,
    ) -> None:
        if synth not in ("classic", "wide"):
            raise ValueError(f"synth must be 'classic' or 'wide', not {synth!r}")
        self.covers, self.k, self.info, self.seed = covers, k, info, seed
        mix = level_mix or LEVEL_MIX
        self.levels = list(mix)
        self.weights = np.asarray([mix[lv] for lv in self.levels], dtype=np.float64)
        self.weights /= self.weights.sum()
        self.synths = {lv: QuerySynth(lv, hands=hands, work_size=covers[0].shape[0])
                       for lv in self.levels}
        self.wide = WideSynth(hands, covers, synth_off) if synth == "wide" else None
        self.wide_share = wide_share
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.covers) * self.k

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        ident, view = divmod(index, self.k)
        cover = self.covers[ident]
        if view == 0:
            img = Image.fromarray(cover)
        else:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            if self.wide is not None and rng.random() < self.wide_share:
                img = self.wide(cover, rng).image
            else:
                level = self.levels[int(rng.choice(len(self.levels), p=self.weights))]
                img = self.synths[level](cover, rng).image
        return torch.from_numpy(to_model_input(img, self.info)), ident
