"""FAISS index against brute-force numpy on seeded data."""

from __future__ import annotations

import numpy as np
import pytest

from service.index import VectorIndex, exact_topk, recall_at_k


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_flat_matches_numpy_exactly() -> None:
    rng = np.random.default_rng(0)
    vectors, queries = _unit(rng, 2000, 64), _unit(rng, 50, 64)
    ids = rng.permutation(10_000)[:2000].astype(np.int64)
    index = VectorIndex.build(ids, vectors, exact_limit=100_000)
    assert index.kind == "flat" and index.ntotal == 2000
    _, got = index.search(queries, 10)
    np.testing.assert_array_equal(got, exact_topk(vectors, ids, queries, 10))


def test_flat_remove_and_add() -> None:
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 100, 16)
    ids = np.arange(100, dtype=np.int64)
    index = VectorIndex.build(ids, vectors, exact_limit=1000)
    index.remove([7])
    _, got = index.search(vectors[7], 5)
    assert 7 not in got[0] and index.ntotal == 99
    index.add(np.array([500]), vectors[7:8])
    assert index.search(vectors[7], 1)[1][0, 0] == 500


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_index_recall(kind: str) -> None:
    rng = np.random.default_rng(2)
    vectors, queries = _unit(rng, 5000, 32), _unit(rng, 100, 32)
    ids = np.arange(5000, dtype=np.int64)
    index = VectorIndex.build(ids, vectors, exact_limit=1000, approx=kind)
    assert index.kind == kind
    # Random high-dimensional data is the hard case for ANN; real embeddings cluster better.
    recall = recall_at_k(index, vectors, ids, queries, 10)
    assert recall >= 0.6, recall
    # a catalog vector as the query must still find itself
    _, top = index.search(vectors[:50], 1)
    assert (top[:, 0] == ids[:50]).mean() >= 0.95
    index.remove([int(top[0, 0])])
    assert int(top[0, 0]) not in index.search(vectors[0], 10)[1][0]


def test_hnsw_deletions_trigger_a_rebuild_without_them() -> None:
    rng = np.random.default_rng(2)
    vectors = _unit(rng, 500, 32)
    ids = np.arange(500, dtype=np.int64)
    index = VectorIndex.build(ids, vectors, exact_limit=10, approx="hnsw")
    gone = list(range(0, 200, 2))  # 100 of 500 hidden: not yet a fifth
    index.remove(gone)
    assert not index.needs_rebuild() and index.ntotal == 400
    index.remove([1, 3])
    assert index.needs_rebuild()
    fresh = index.rebuilt()
    assert fresh.kind == "hnsw" and fresh.ntotal == 398 and int(fresh._index.ntotal) == 398
    _, got = fresh.search(vectors[:10], 5)
    assert not set(got.ravel()) & (set(gone) | {1, 3})
    assert got[5, 0] == 5  # a kept vector still finds itself


def test_vectors_of_gives_back_stored_vectors_except_ivf() -> None:
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(300, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = np.arange(1000, 1300)
    for kind in ("flat", "hnsw"):
        index = VectorIndex.build(ids, vecs, exact_limit=0 if kind == "hnsw" else 10_000)
        assert index.kind == kind
        got = index.vectors_of([1005, 1299])
        assert got is not None and np.allclose(got, vecs[[5, 299]])
    ivf = VectorIndex.build(ids, vecs, exact_limit=0, approx="ivf")
    assert ivf.vectors_of([1005]) is None
