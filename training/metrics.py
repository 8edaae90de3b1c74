"""The one scorer and the one brute-force ranker of training, evaluation and benchmarks.

"P@k" in this project's tables is **top-k accuracy**: the share of queries whose one true
album is among the first k ranked (each query has exactly one relevant catalog entry, so
this is also recall@k; it is not precision@k in the IR sense). Keys stay ``p@1`` / ``p@5``
in score dicts and reports for continuity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def top_k(queries: np.ndarray, catalog: np.ndarray, k: int = 5) -> np.ndarray:
    """Indices of the ``k`` catalog rows with the largest inner product per query (for unit
    vectors: cosine); ties keep catalog order (stable sort), as FAISS's flat index does."""
    return top_k_of(np.asarray(queries, np.float32) @ np.asarray(catalog, np.float32).T, k)


def top_k_of(sims: np.ndarray, k: int = 5) -> np.ndarray:
    """Indices of the ``k`` largest scores per row of a (queries x catalog) score matrix."""
    return np.argsort(-sims, axis=1, kind="stable")[:, : min(k, sims.shape[1])]


def top_k_accuracy(rankings: Sequence[Sequence[Any]] | np.ndarray,
                   truth: Sequence[Any] | np.ndarray, k: int) -> float:
    """Share of queries whose true item is among the first ``k`` of its ranking."""
    if len(truth) == 0:
        return float("nan")
    if len(rankings) != len(truth):
        raise ValueError(f"{len(rankings)} rankings for {len(truth)} queries")
    hits = sum(t in list(r[:k]) for r, t in zip(rankings, truth, strict=True))
    return hits / len(truth)
