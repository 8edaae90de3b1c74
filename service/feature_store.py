"""Local features of catalog covers on disk, keyed by (feature config, sha256 of the image bytes).

Neither a restart nor a new embedder recomputes them: the key names the extraction settings
and the image content, nothing about the model. Derived data (see ``open_derived_db``): a
corrupt file is moved aside and rebuilt, never fatal. Rows are content-addressed, so a row
left by a failed enrolment names no album and is reused by the retry.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from service.cache import open_derived_db, rows_by_digest
from service.features import LocalFeatures

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS features (
    config TEXT NOT NULL, sha256 TEXT NOT NULL, points BLOB NOT NULL, descriptors BLOB NOT NULL,
    PRIMARY KEY (config, sha256)
);
"""


class FeatureStore:
    """Thread-safe SQLite store of ``LocalFeatures`` for one feature configuration."""

    def __init__(self, path: Path, config_key: str) -> None:
        self.config_key = config_key
        self._lock = threading.Lock()
        self._db = open_derived_db(Path(path), SCHEMA)
        self.extracted = 0  # features computed by this process (tests: a restart computes none)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def get_many(self, digests: list[str]) -> dict[str, LocalFeatures]:
        found: dict[str, LocalFeatures] = {}
        with self._lock:
            for digest, points, desc in rows_by_digest(
                    self._db, "SELECT sha256, points, descriptors FROM features WHERE config=? "
                    "AND sha256 IN", self.config_key, digests):
                found[digest] = LocalFeatures.from_bytes(points, desc)
        return found

    def put_many(self, items: list[tuple[str, LocalFeatures]]) -> None:
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO features VALUES (?, ?, ?, ?)",
                [(self.config_key, d, *f.to_bytes()) for d, f in items])

    def delete(self, digest: str) -> None:
        """Drop one cover's features (undo of a failed enrolment, or its album deleted)."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM features WHERE config=? AND sha256=?",
                             (self.config_key, digest))

    def count(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM features WHERE config=?",
                                   (self.config_key,)).fetchone()
        return int(row[0])


def features_with_store(
    store: FeatureStore, digests: list[str], extract: Callable[[int], LocalFeatures | None],
    batch: int = 64, workers: int = 1, closing: Callable[[], bool] = lambda: False,
) -> list[LocalFeatures | None]:
    """Features for every digest: stored ones read back, the rest extracted (``workers``
    threads: OpenCV releases the GIL) and stored in batches, so a restart mid-way keeps what
    was done. ``extract(i)`` may return None (undecodable); ``closing()`` stops early."""
    hits = store.get_many(sorted(set(digests)))
    out: list[LocalFeatures | None] = [hits.get(d) for d in digests]
    missing = [i for i, f in enumerate(out) if f is None]
    if missing:
        log.info("extracting local features of %d of %d covers (%d stored)", len(missing),
                 len(digests), len(digests) - len(missing))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(missing), batch):
            if closing():
                raise RuntimeError("shutting down")
            idx = missing[start : start + batch]
            done: list[tuple[str, LocalFeatures]] = []
            for i, feats in zip(idx, pool.map(extract, idx), strict=True):
                out[i] = feats
                if feats is not None:
                    done.append((digests[i], feats))
            store.extracted += len(done)
            store.put_many(done)
            log.info("local features %d/%d", min(start + batch, len(missing)), len(missing))
    return out
