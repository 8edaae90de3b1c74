"""On-disk embedding cache keyed by (model version, sha256 of the image bytes).

A second table remembers (path, size, mtime) -> sha256 so that an unchanged catalog is not even
re-read and re-hashed on restart: 10,000 unchanged images come back in seconds.

The cache is derived data: :func:`open_derived_db` moves a database that cannot be opened or
fails SQLite's quick check aside (kept for a post-mortem, logged loudly) and starts an empty
one, so a corrupt cache costs a re-embedding, not the service. Only derived stores may use it:
never the album store, the only copy of enrolled albums.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    model_version TEXT NOT NULL, sha256 TEXT NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY (model_version, sha256)
);
CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL
);
"""


SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26


class CorruptDatabase(sqlite3.DatabaseError):
    """The file opened but failed ``PRAGMA quick_check``."""


def open_derived_db(path: Path, schema: str) -> sqlite3.Connection:
    """Open (creating) a rebuildable SQLite cache; a corrupt one is moved aside and recreated."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _open_checked(path, schema)
    except sqlite3.DatabaseError as exc:
        # Only corruption: a locked or unwritable database is not the cache's fault.
        code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
        if not isinstance(exc, CorruptDatabase) and code not in (SQLITE_CORRUPT, SQLITE_NOTADB):
            raise
        aside = _move_aside(path)
        log.error("DERIVED CACHE %s CANNOT BE READ (%s): moved aside to %s and rebuilt from "
                  "scratch; everything in it is computed again", path, exc, aside)
        return _open_checked(path, schema)


def rows_by_digest(db: sqlite3.Connection, select: str, key: str, digests: list[str]
                   ) -> Iterator[tuple[Any, ...]]:
    """Rows of ``select`` (``... WHERE <key column>=? AND sha256 IN``) for ``key`` and these
    digests, 500 at a time: SQLite caps the number of bound parameters."""
    for start in range(0, len(digests), 500):
        chunk = digests[start : start + 500]
        yield from db.execute(f"{select} ({','.join('?' * len(chunk))})", (key, *chunk))


def _open_checked(path: Path, schema: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(schema)
        # A damaged page may open fine and fail mid-load: check the whole file now (a few ms
        # per MB), while moving it aside is still cheap.
        result = db.execute("PRAGMA quick_check").fetchone()[0]
        if result != "ok":
            raise CorruptDatabase(f"quick_check: {result}")
    except BaseException:
        db.close()
        raise
    return db


def _move_aside(path: Path) -> Path:
    """Rename the database and its WAL/SHM files to ``<name>.corrupt-<UTC time>[-wal|-shm]``."""
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            src.replace(Path(f"{aside}{suffix}"))
    return aside


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SameImages:
    """Image sha256 -> album ids holding that image, oldest first: names duplicate enrolments."""

    def __init__(self) -> None:
        self._ids: dict[str, list[str]] = {}

    def add(self, digest: str, album_id: str) -> None:
        if digest:
            self._ids.setdefault(digest, []).append(album_id)

    def remove(self, digest: str, album_id: str) -> None:
        ids = self._ids.get(digest, [])
        if album_id in ids:
            ids.remove(album_id)
            if not ids:
                del self._ids[digest]

    def first(self, digest: str, excluding: str | None = None) -> str | None:
        """The oldest album with this image, other than ``excluding``."""
        return next((a for a in self._ids.get(digest, []) if a != excluding), None)


class EmbeddingCache:
    """Thread-safe cache; losing it only costs re-embedding, so writes use synchronous=NORMAL."""

    def __init__(self, path: Path, model_version: str, dim: int) -> None:
        self.model_version = model_version
        self.dim = dim
        self._lock = threading.Lock()
        self._db = open_derived_db(path, SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def file_hash(self, path: Path) -> str:
        """sha256 of a file, served from the (path, size, mtime) table when unchanged."""
        st = path.stat()
        key = str(path)
        with self._lock:
            row = self._db.execute(
                "SELECT size, mtime_ns, sha256 FROM file_hashes WHERE path=?", (key,)
            ).fetchone()
        if row and row[0] == st.st_size and row[1] == st.st_mtime_ns:
            return str(row[2])
        digest = sha256_bytes(path.read_bytes())
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?)",
                (key, st.st_size, st.st_mtime_ns, digest),
            )
        return digest

    def readable_file_hash(self, path: Path) -> str:
        """:meth:`file_hash`, or "" when the file is gone or cannot be read (logged)."""
        try:
            return self.file_hash(path)
        except OSError as exc:
            log.error("image %s cannot be read: %s", path, exc)
            return ""

    def get_many(self, digests: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for digest, blob in rows_by_digest(
                    self._db, "SELECT sha256, vector FROM embeddings WHERE model_version=? "
                    "AND sha256 IN", self.model_version, digests):
                vec = np.frombuffer(blob, dtype=np.float32)
                if vec.shape == (self.dim,):
                    found[digest] = vec
        return found

    def put_many(self, items: list[tuple[str, np.ndarray]]) -> None:
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)",
                [
                    (self.model_version, d, np.asarray(v, np.float32).tobytes())
                    for d, v in items
                ],
            )


def view_key(digest: str, view: str) -> str:
    """Cache key of one view of an image: the plain sha256 for the image itself (so caches
    written before views existed stay valid), ``<sha256>:<view>`` for a derived rendition."""
    return f"{digest}:{view}" if view else digest


LoadViews = Callable[[list[int], tuple[str, ...]], np.ndarray]


def embed_views_with_cache(
    cache: EmbeddingCache, digests: list[str], views: tuple[str, ...], load_batch: LoadViews,
    batch_size: int,
) -> tuple[np.ndarray, int]:
    """Vectors of every view of every digest, ``(len(views), len(digests), dim)``, embedding
    only the misses; returns (vectors, images embedded in any view).

    ``load_batch(indices, views)`` decodes each item once and embeds the views asked for,
    ``(len(views), len(indices), dim)``: items missing the same views go together, so a first
    start decodes each image once, and a cache from before a view existed embeds only it.
    """
    vectors = np.zeros((len(views), len(digests), cache.dim), dtype=np.float32)
    keys = sorted({view_key(d, v) for d in digests for v in views})
    hits = cache.get_many(keys)
    wanted: dict[tuple[str, ...], list[int]] = {}
    for i, d in enumerate(digests):
        for j, v in enumerate(views):
            if view_key(d, v) in hits:
                vectors[j, i] = hits[view_key(d, v)]
        missing = tuple(v for v in views if view_key(d, v) not in hits)
        if missing:
            wanted.setdefault(missing, []).append(i)
    n_missing = sum(len(idx) for idx in wanted.values())
    if n_missing:
        log.info("embedding %d of %d images (%d cached)", n_missing, len(digests),
                 len(digests) - n_missing)
    done = 0
    for group, items in wanted.items():
        rows = [views.index(v) for v in group]
        for start in range(0, len(items), batch_size):
            idx = items[start : start + batch_size]
            out = load_batch(idx, group)
            vectors[np.ix_(rows, idx)] = out
            # A zero row marks an undecodable file: never cache it, so a fixed file is retried.
            cache.put_many([(view_key(digests[i], v), out[g, n])
                            for g, v in enumerate(group) for n, i in enumerate(idx)
                            if out[g, n].any()])
            done += len(idx)
            log.info("embedded %d/%d", done, n_missing)
    return vectors, n_missing
