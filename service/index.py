"""FAISS vector index keyed by int64 ids: exact inner product, approximate above a size limit."""

from __future__ import annotations

import logging
import threading

import faiss
import numpy as np

log = logging.getLogger(__name__)
_thread_state = threading.local()


def single_thread_faiss() -> None:
    """One OpenMP thread for FAISS in the calling thread (once per thread).

    OpenMP's thread count is a per-thread setting: set in the loader thread only, request
    threads kept the process default (2 here) and a single-query search on a busy CPU waited at
    the team barrier (6-40 ms on a 5-album index). ``cratewatch serve`` also sets
    ``OMP_NUM_THREADS=1`` before FAISS loads; this covers apps built in-process.
    """
    if not getattr(_thread_state, "faiss_single", False):
        faiss.omp_set_num_threads(1)
        _thread_state.faiss_single = True


class VectorIndex:
    """Cosine search over L2-normalised vectors; thread-safe add/remove/search."""

    def __init__(self, dim: int, kind: str = "flat") -> None:
        self.dim = dim
        self.kind = kind
        self._lock = threading.Lock()
        self._hidden: set[int] = set()  # HNSW cannot remove: ids filtered until the next rebuild
        self._index = self._make(kind)

    def _make(self, kind: str) -> faiss.Index:
        if kind == "flat":
            return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        if kind == "hnsw":
            hnsw = faiss.IndexHNSWFlat(self.dim, 32, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efSearch = 128  # recall over speed: still far under a millisecond
            self._inner = hnsw  # IndexIDMap2 keeps a reference only: keep the index alive
            return faiss.IndexIDMap2(hnsw)
        if kind == "ivf":
            quantizer = faiss.IndexFlatIP(self.dim)
            # IndexIVFFlat keeps a reference only: hold the quantizer so it outlives this call.
            self._quantizer = quantizer
            return faiss.IndexIVFFlat(quantizer, self.dim, 1, faiss.METRIC_INNER_PRODUCT)
        raise ValueError(f"unknown index kind {kind!r}")

    @classmethod
    def build(
        cls, ids: np.ndarray, vectors: np.ndarray, exact_limit: int, approx: str = "hnsw"
    ) -> VectorIndex:
        """Flat up to ``exact_limit`` vectors, else ``approx`` ("hnsw" or "ivf")."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        kind = "flat" if len(vectors) <= exact_limit else approx
        index = cls(vectors.shape[1], kind)
        if kind == "ivf":
            index._train_ivf(vectors)
        index.add(ids, vectors)
        return index

    def _train_ivf(self, vectors: np.ndarray) -> None:
        nlist = max(1, int(4 * np.sqrt(len(vectors))))
        quantizer = faiss.IndexFlatIP(self.dim)
        self._quantizer = quantizer
        ivf = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.train(vectors)
        ivf.nprobe = max(1, nlist // 16)
        self._index = ivf

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal) - len(self._hidden)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vecs = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        with self._lock:
            self._index.add_with_ids(vecs, np.asarray(ids, dtype=np.int64))

    def remove(self, ids: list[int]) -> None:
        with self._lock:
            if self.kind == "hnsw":
                self._hidden.update(ids)
            else:
                self._index.remove_ids(np.asarray(ids, dtype=np.int64))  # type: ignore[arg-type]

    def needs_rebuild(self) -> bool:
        """HNSW cannot delete: once hidden ids are a fifth of it, rebuild (``rebuilt``)."""
        return self.kind == "hnsw" and len(self._hidden) > 0.2 * max(1, int(self._index.ntotal))

    def rebuilt(self) -> VectorIndex:
        """A fresh index of the same kind holding only the visible vectors."""
        with self._lock:
            ids = faiss.vector_to_array(self._index.id_map)  # type: ignore[attr-defined]
            keep = np.array([i for i in ids if int(i) not in self._hidden], dtype=np.int64)
            vecs = (np.stack([self._index.reconstruct(int(i)) for i in keep]) if len(keep)
                    else np.zeros((0, self.dim), np.float32))
        fresh = VectorIndex(self.dim, self.kind)
        fresh.add(keep, vecs)
        return fresh

    def vectors_of(self, ids: list[int]) -> np.ndarray | None:
        """The stored vectors of ``ids`` (rows in order); None where the index cannot give
        them back (IVF keeps no id -> vector map)."""
        if self.kind == "ivf" or not ids:
            return None
        with self._lock:
            try:
                return np.stack([self._index.reconstruct(int(i)) for i in ids])
            except RuntimeError:  # an id removed meanwhile
                return None

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) for each query row, best first; missing slots have id -1."""
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(-1, self.dim)
        with self._lock:
            fetch = min(k + len(self._hidden), max(1, int(self._index.ntotal)))
            scores, ids = self._index.search(q, fetch)
            hidden = set(self._hidden)
        if hidden:
            scores, ids = _drop_hidden(scores, ids, hidden, k)
        return scores[:, :k], ids[:, :k]


def _drop_hidden(
    scores: np.ndarray, ids: np.ndarray, hidden: set[int], k: int
) -> tuple[np.ndarray, np.ndarray]:
    out_s = np.full((len(ids), k), -np.inf, dtype=np.float32)
    out_i = np.full((len(ids), k), -1, dtype=np.int64)
    for row in range(len(ids)):
        keep = [j for j, i in enumerate(ids[row]) if i not in hidden and i != -1][:k]
        out_s[row, : len(keep)] = scores[row, keep]
        out_i[row, : len(keep)] = ids[row, keep]
    return out_s, out_i


def exact_topk(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Brute-force numpy top-k ids (the reference that approximate search is measured against)."""
    sims = queries @ vectors.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return ids[order]


def recall_at_k(index: VectorIndex, vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray,
                k: int) -> float:
    """Fraction of the exact top-k ids that ``index`` also returns in its top-k."""
    truth = exact_topk(vectors, ids, queries, k)
    _, got = index.search(queries, k)
    hits = sum(len(set(t) & set(g)) for t, g in zip(truth, got, strict=True))
    return hits / truth.size
