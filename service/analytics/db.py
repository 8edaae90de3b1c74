"""Two SQL backends behind one small interface: SQLite (default) and PostgreSQL (shared).

Statements are written once with ``?`` placeholders and portable SQL (window functions,
``ON CONFLICT``); the PostgreSQL backend rewrites the placeholders for psycopg.
Every transaction is committed durably before it returns: SQLite runs WAL with
``synchronous=FULL``, PostgreSQL's default ``synchronous_commit=on`` flushes the WAL.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from service.enrol import StorageFull

log = logging.getLogger(__name__)

Params = Sequence[Any]


class AnalyticsUnavailable(RuntimeError):
    """The analytics database cannot be reached or opened."""


class Tx(Protocol):
    """One open transaction."""

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run a statement; returns the affected row count."""

    def query(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Run a query; returns all rows."""


class Backend(Protocol):
    dialect: str
    where: str

    def transaction(self, lock_key: int | None = None) -> Any:
        """Context manager yielding a ``Tx``; commits on success, rolls back on error."""

    def close(self) -> None: ...


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Params = ()) -> int:
        return self.conn.execute(sql, tuple(params)).rowcount

    def query(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(sql, tuple(params)).fetchall())


class SqliteBackend:
    """One connection, serialised by a lock; explicit BEGIN IMMEDIATE so writers queue."""

    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.where = str(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves (DDL included).
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                       timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: the commit is on disk before the 200 that acknowledges it.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=30000")
        except sqlite3.Error as exc:
            raise AnalyticsUnavailable(f"cannot open {path}: {exc}") from exc

    @contextmanager
    def transaction(self, lock_key: int | None = None) -> Iterator[Tx]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield _SqliteTx(self._db)
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:  # locked too long, disk full, I/O error
                if "full" in str(exc):
                    raise StorageFull(f"analytics store {self.where}: {exc}") from exc
                raise AnalyticsUnavailable(f"{self.where}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _PgTx:
    def __init__(self, cur: Any) -> None:
        self.cur = cur

    def execute(self, sql: str, params: Params = ()) -> int:
        self.cur.execute(sql.replace("?", "%s"), tuple(params))
        return int(self.cur.rowcount)

    def query(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        self.cur.execute(sql.replace("?", "%s"), tuple(params))
        return list(self.cur.fetchall())


class PostgresBackend:
    """One psycopg connection, serialised by a lock, reconnected after it breaks."""

    dialect = "postgresql"

    # A connection idle this long is pinged first: the server or a proxy may have closed it,
    # and psycopg only notices on use, which would fail one request for nothing.
    ping_after_s = 30.0

    def __init__(self, url: str, connect_timeout_s: int = 5) -> None:
        import psycopg  # only needed when a PostgreSQL URL is configured

        self._psycopg = psycopg
        self._url = url
        self._timeout = connect_timeout_s
        self.where = _redact(url)
        self._lock = threading.Lock()
        self._conn: Any = None
        self._last_used = 0.0
        with self._lock:
            self._connect()

    def _connect(self) -> Any:
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            if time.monotonic() - self._last_used < self.ping_after_s or self._alive():
                self._last_used = time.monotonic()
                return self._conn
            self._conn.close()
        try:
            self._conn = self._psycopg.connect(self._url, connect_timeout=self._timeout,
                                               application_name="cratewatch")
        except self._psycopg.Error as exc:
            raise AnalyticsUnavailable(f"cannot connect to {self.where}: {exc}") from exc
        self._last_used = time.monotonic()
        return self._conn

    def _alive(self) -> bool:
        try:
            self._conn.execute("SELECT 1")
            self._conn.rollback()
            return True
        except self._psycopg.Error:
            return False

    @contextmanager
    def transaction(self, lock_key: int | None = None) -> Iterator[Tx]:
        with self._lock:
            conn = self._connect()
            try:
                with conn.transaction(), conn.cursor() as cur:
                    if lock_key is not None:
                        # Replicas starting together take turns (migrations run once).
                        cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
                    yield _PgTx(cur)
            except self._psycopg.OperationalError as exc:
                raise AnalyticsUnavailable(f"{self.where}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()


def _redact(url: str) -> str:
    """The URL without its password, for logs and errors."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"


def open_backend(database_url: str | None, data_dir: Path) -> Backend:
    """PostgreSQL for a ``postgresql://`` URL, else SQLite at ``<data>/analytics.sqlite3``."""
    if not database_url:
        return SqliteBackend(Path(data_dir) / "analytics.sqlite3")
    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if not url.startswith("postgresql://"):
        raise ValueError("CRATEWATCH_DATABASE_URL must start with postgresql://")
    return PostgresBackend(url)
