"""The two derived stores (embedding cache, local-feature store) read back by content hash.

Lookups go 500 digests per query (SQLite caps bound parameters), so a catalog larger than
that crosses the chunk boundary on every restart: every stored row must come back, keyed by
the model version / feature configuration it was stored under, and nothing else.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from service.cache import EmbeddingCache
from service.feature_store import FeatureStore
from service.features import DIM, LocalFeatures

N = 1201  # more than two chunks, not a multiple of one


def _digest(i: int) -> str:
    return f"{i:064x}"


def test_embedding_cache_returns_every_row_of_its_model_version(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "embeddings.sqlite3", "v1", 4)
    cache.put_many([(_digest(i), np.full(4, i, np.float32)) for i in range(N)])
    asked = [_digest(i) for i in range(N + 5)]  # five never stored
    got = cache.get_many(asked)
    assert sorted(got) == asked[:N]
    assert all(got[_digest(i)][0] == i for i in range(N))
    other = EmbeddingCache(tmp_path / "embeddings.sqlite3", "v2", 4)
    assert other.get_many(asked) == {}  # another model's rows are not these
    cache.close()
    other.close()


def test_feature_store_returns_every_row_of_its_config(tmp_path: Path) -> None:
    def feats(i: int) -> LocalFeatures:
        n = i % 7
        return LocalFeatures(np.full((n, 2), i, np.float32), np.full((n, DIM), i % 251, np.uint8))

    store = FeatureStore(tmp_path / "features.sqlite3", "cfg-a")
    store.put_many([(_digest(i), feats(i)) for i in range(N)])
    asked = [_digest(i) for i in range(N + 5)]
    got = store.get_many(asked)
    assert sorted(got) == asked[:N]
    for i in (0, 499, 500, 999, 1000, N - 1):
        np.testing.assert_array_equal(got[_digest(i)].desc, feats(i).desc)
        np.testing.assert_array_equal(got[_digest(i)].points, feats(i).points)
    assert FeatureStore(tmp_path / "features.sqlite3", "cfg-b").get_many(asked) == {}
    store.close()
