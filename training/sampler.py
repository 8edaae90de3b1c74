"""PK batches: P identities x K views (view 0 = the clean cover, the rest degraded queries)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class PKSampler(Sampler[list[int]]):
    """Yields batches of flat view indices ``identity * K + view``; labels are ``index // K``.

    Every identity appears once per epoch (in a fresh random order); the last partial group
    of fewer than P identities is dropped so every batch has exactly P*K rows.
    """

    def __init__(self, n_identities: int, p: int, k: int, seed: int = 0) -> None:
        if k < 2 or p < 2:
            raise ValueError("PK batches need P >= 2 identities and K >= 2 views")
        if n_identities < p:
            raise ValueError(f"need at least P={p} identities, got {n_identities}")
        self.n, self.p, self.k, self.seed = n_identities, p, k, seed
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Epoch ``epoch``'s order (seeded by it), from batch ``start`` on: a run resumed
        mid-epoch draws exactly the batches it had not done yet."""
        self.epoch, self.start = epoch, start

    def __len__(self) -> int:
        return self.n // self.p

    def __iter__(self) -> Iterator[list[int]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        for b in range(self.start, len(self)):
            ids = order[b * self.p : (b + 1) * self.p]
            yield [int(i) * self.k + v for i in ids for v in range(self.k)]
