"""A FAISS index over every catalog cover's local descriptors, voting per album.

Bag-of-visual-words retrieval without the vocabulary: each query descriptor's nearest catalog
descriptor votes for the album that owns it when it passes Lowe's ratio test against the
nearest descriptor of *another* album (a second neighbour on the same cover is no competitor).
The index comes from a FAISS factory string (``IVF1024,SQ8`` by default: 8-bit codes, a
quarter of float32); below ``exact_limit`` descriptors an exact ``Flat`` index is used, since
an IVF needs enough points to train its lists.
"""

from __future__ import annotations

import contextlib
import logging
import os
from concurrent.futures import Executor
from pathlib import Path

import faiss
import numpy as np

from service.descriptor_state import write_state
from service.features import DIM, LocalFeatures
from service.rwlock import ReadWriteLock

log = logging.getLogger(__name__)

HIDDEN_REBUILD_SHARE = 0.2  # indexes that cannot remove rebuild once this share is hidden
SPLIT_MIN = 32  # descriptors per half worth a second thread


class DescriptorIndex:
    """Thread-safe; descriptors of one album have contiguous ids, so removal is a range."""

    def __init__(self, factory: str = "IVF1024,SQ8", exact_limit: int = 50_000,
                 nprobe: int = 6, ratio: float = 0.8, trained: Path | None = None) -> None:
        self.factory, self.exact_limit, self.nprobe, self.ratio = (
            factory, exact_limit, nprobe, ratio)
        # Where the trained, empty index is kept: training an IVF (k-means over 100k
        # descriptors) is most of a warm restart's time, and the lists need not change when a
        # few covers do.
        self.trained = trained
        self._lock = ReadWriteLock()  # searches share it; changes are exclusive
        self._ranges: dict[int, tuple[int, int]] = {}  # album iid -> [start, stop) descriptor ids
        self._owner = np.zeros(0, dtype=np.int64)  # descriptor id -> album iid (-1: removed)
        self._next = 0
        self._hidden = 0
        self.added = 0  # descriptors added by this process (tests: a warm restart adds none)
        self.version = 0  # bumped by every change: tells a checkpoint whether to write
        self.kind = "Flat"
        self._index: faiss.Index = self._make("Flat", np.zeros((0, DIM), np.float32))

    def _make(self, factory: str, train: np.ndarray) -> faiss.Index:
        if factory == "Flat":
            return faiss.IndexIDMap2(faiss.IndexFlatL2(DIM))
        index = self._load_trained()
        if index is None:
            index = faiss.index_factory(DIM, factory)
        if not index.is_trained:
            index.train(train)
            self._save_trained(index)
        if "IVF" in factory:
            faiss.extract_index_ivf(index).nprobe = self.nprobe
        if "HNSW" in factory:
            return faiss.IndexIDMap2(index)  # HNSW stores no ids of its own
        return index

    def _load_trained(self) -> faiss.Index | None:
        if self.trained is None or not self.trained.is_file():
            return None
        try:
            index = faiss.read_index(str(self.trained))
        except RuntimeError as exc:  # derived data: a damaged file is retrained, not fatal
            log.warning("ignoring trained index %s: %s", self.trained, exc)
            return None
        ok = index.d == DIM and index.is_trained and index.ntotal == 0
        return index if ok else None

    def _save_trained(self, index: faiss.Index) -> None:
        if self.trained is None or index.ntotal:
            return
        tmp = self.trained.with_name(self.trained.name + ".tmp")
        faiss.write_index(index, str(tmp))
        os.replace(tmp, self.trained)

    def build(self, items: list[tuple[int, LocalFeatures]]) -> None:
        """Replace the index with these albums' descriptors (startup, or a rebuild)."""
        with self._lock.write():
            total = sum(len(f) for _, f in items)
            kind = "Flat" if total <= self.exact_limit else self.factory
            train = _sample([f.float_desc() for _, f in items if len(f)], 100_000)
            self._index = self._make(kind, train)
            self.kind, self._ranges, self._next, self._hidden = kind, {}, 0, 0
            self.version += 1
            self._owner = np.full(total, -1, dtype=np.int64)
            for iid, feats in items:
                self._add_locked(iid, feats)
        log.info("descriptor index %s: %d descriptors of %d covers", kind, total, len(items))

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal) - self._hidden

    def add(self, iid: int, feats: LocalFeatures) -> None:
        with self._lock.write():
            self._add_locked(iid, feats)

    def _add_locked(self, iid: int, feats: LocalFeatures) -> None:
        n = len(feats)
        start, stop = self._next, self._next + n
        if stop > len(self._owner):
            grown = np.full(max(stop, 2 * len(self._owner)), -1, dtype=np.int64)
            grown[: len(self._owner)] = self._owner
            self._owner = grown
        self._owner[start:stop] = iid
        self._ranges[iid] = (start, stop)
        self._next = stop
        self.version += 1
        if n:
            self._index.add_with_ids(feats.float_desc(), np.arange(start, stop, dtype=np.int64))
            self.added += n

    def remove(self, iid: int) -> bool:
        """Forget an album's descriptors; True when the index asks for a rebuild."""
        with self._lock.write():
            span = self._ranges.pop(iid, None)
            if span is None:
                return False
            start, stop = span
            self._owner[start:stop] = -1
            self.version += 1
            if "HNSW" in self.kind:
                self._hidden += stop - start  # HNSW cannot delete: filtered until a rebuild
                return self._hidden > HIDDEN_REBUILD_SHARE * max(1, int(self._index.ntotal))
            self._index.remove_ids(faiss.IDSelectorRange(start, stop))
            return False

    def adopt(self, index: faiss.Index, kind: str, ranges: dict[int, tuple[int, int]],
              next_id: int, drop: list[tuple[int, int]]) -> bool:
        """Take over a saved, filled index whose ranges ``ranges`` are still current; the
        ``drop`` ranges (albums gone since) are removed. False (nothing taken) when the
        counts do not add up: the caller rebuilds."""
        hnsw = "HNSW" in kind
        if not hnsw:
            for start, stop in drop:
                index.remove_ids(faiss.IDSelectorRange(start, stop))
        kept = sum(stop - start for start, stop in ranges.values())
        hidden = int(index.ntotal) - kept
        if hidden < 0 or (hidden and not hnsw) or any(e > next_id for _, e in ranges.values()):
            return False
        with contextlib.suppress(RuntimeError):  # not an IVF: nothing to probe
            faiss.extract_index_ivf(index).nprobe = self.nprobe
        owner = np.full(next_id, -1, dtype=np.int64)
        for iid, (start, stop) in ranges.items():
            owner[start:stop] = iid
        with self._lock.write():
            self._index, self.kind, self._ranges = index, kind, dict(ranges)
            self._owner, self._next, self._hidden = owner, next_id, hidden
            self.version += 1
        return True

    def saved(self, names: dict[int, tuple[str, str]], directory: Path, stem: str) -> None:
        """Write the filled index and its ranges by (album id, sha256) (see
        service/descriptor_state.py); under the lock, so the file is one consistent state."""
        with self._lock.read():
            spans = {names[i][0]: (names[i][1], s, e) for i, (s, e) in self._ranges.items()
                     if i in names}
            write_state(directory, stem, self._index, self.kind, spans, self._next)

    def search(self, query: LocalFeatures, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """(distances, owners): each query descriptor's k nearest catalog descriptors' albums."""
        return self._search_rows(query.float_desc(), k)

    def _search_rows(self, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if len(rows) == 0:
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
        with self._lock.read():
            if self._index.ntotal == 0:
                return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
            dist, ids = self._index.search(rows, k)
            owners = np.where(ids >= 0, self._owner[np.clip(ids, 0, None)], -1)
        return dist, owners

    def votes(self, query: LocalFeatures, helper: Executor | None = None) -> dict[int, int]:
        """Album iid -> descriptors of the query that vote for it (ratio test across albums).

        ``helper``: an idle thread that searches half of the descriptors meanwhile (FAISS
        releases the GIL; each descriptor's neighbours do not depend on the others)."""
        rows = query.float_desc()
        if helper is not None and len(rows) >= 2 * SPLIT_MIN:
            half = len(rows) // 2
            later = helper.submit(self._search_rows, rows[half:], 2)
            d1, o1 = self._search_rows(rows[:half], 2)
            d2, o2 = later.result()
            dist, owners = np.concatenate([d1, d2]), np.concatenate([o1, o2])
        else:
            dist, owners = self._search_rows(rows, 2)
        if len(owners) == 0:
            return {}
        first = owners[:, 0]
        # FAISS L2 distances are squared, so the ratio is squared too.
        ok = (first >= 0) & ((owners[:, 1] == first) | (dist[:, 0] < self.ratio**2 * dist[:, 1]))
        albums, counts = np.unique(first[ok], return_counts=True)
        return {int(a): int(c) for a, c in zip(albums, counts, strict=True)}


def _sample(parts: list[np.ndarray], limit: int) -> np.ndarray:
    """At most ``limit`` rows of the stacked parts (a seeded sample: rebuilds are repeatable)."""
    if not parts:
        return np.zeros((0, DIM), np.float32)
    stacked = np.concatenate(parts)
    if len(stacked) <= limit:
        return stacked
    rows = np.random.default_rng(0).choice(len(stacked), size=limit, replace=False)
    return stacked[np.sort(rows)]
