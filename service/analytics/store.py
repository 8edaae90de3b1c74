"""The analytics store: sightings, sales, and the raw facts reports are computed from.

Opened at startup (migrations run then); if the database is unreachable the service still
identifies, analytics answers 503 and the next request tries again. The store never moves,
deletes or recreates a database file it cannot read: that is an operator's call.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from service.analytics.db import AnalyticsUnavailable, Backend, open_backend
from service.analytics.migrations import migrate
from service.analytics.sales_csv import Sale

log = logging.getLogger(__name__)
RETRY_OPEN_S = 5.0
DAY_S = 86_400.0


@dataclass(frozen=True)
class BrowseStart:
    """The first sighting of one browse."""

    album_id: str
    camera: str
    ts: float


@dataclass(frozen=True)
class SaleFact:
    album_id: str
    sold_at: float
    quantity: int


@dataclass(frozen=True)
class ImportResult:
    imported: int
    duplicates: int


class AnalyticsStore:
    """Thread-safe; every write is committed durably before the method returns."""

    def __init__(self, database_url: str | None, data_dir: Path, browse_gap_s: float,
                 retention_days: int) -> None:
        self._url, self._data = database_url, data_dir
        self.gap_s, self.retention_days = browse_gap_s, retention_days
        self._backend: Backend | None = None
        self._open_lock = threading.Lock()
        self._last_try = 0.0
        self.error: str | None = None

    @property
    def where(self) -> str:
        return self._backend.where if self._backend else ""

    @property
    def dialect(self) -> str:
        return self._backend.dialect if self._backend else ""

    def open(self) -> Backend:
        """Connect and migrate once; later calls reuse it. Raises AnalyticsUnavailable."""
        with self._open_lock:
            if self._backend is not None:
                return self._backend
            if time.monotonic() - self._last_try < RETRY_OPEN_S and self.error:
                raise AnalyticsUnavailable(self.error)
            self._last_try = time.monotonic()
            try:
                backend = open_backend(self._url, self._data)
                migrate(backend)
            except Exception as exc:
                self.error = f"analytics store unavailable: {type(exc).__name__}: {exc}"
                log.error("%s", self.error)
                raise AnalyticsUnavailable(self.error) from exc
            self._backend, self.error = backend, None
            log.info("analytics store: %s %s", backend.dialect, backend.where)
        self.purge_expired()
        return backend

    def close(self) -> None:
        with self._open_lock:
            if self._backend is not None:
                self._backend.close()
                self._backend = None

    def add_sighting(self, album_id: str, camera: str, ts: float, confidence: float) -> bool:
        """Store one sighting; True when it starts a browse of its own (for the counter)."""
        backend = self.open()
        with backend.transaction() as tx:
            near = tx.query(
                "SELECT COUNT(*) FROM sightings WHERE album_id=? AND camera=? AND ts>? AND ts<?",
                (album_id, camera, ts - self.gap_s, ts + self.gap_s))
            tx.execute("INSERT INTO sightings (album_id, camera, ts, confidence, recorded_at) "
                       "VALUES (?, ?, ?, ?, ?)", (album_id, camera, ts, confidence, time.time()))
        return int(near[0][0]) == 0

    def import_sales(self, sales: list[Sale]) -> ImportResult:
        """All rows in one transaction: an acknowledged import is whole, a failed one absent."""
        backend = self.open()
        imported = 0
        now = time.time()
        with backend.transaction() as tx:
            for s in sales:
                imported += tx.execute(
                    "INSERT INTO sales (sale_key, sale_id, sold_at, album_id, quantity, store, "
                    "price, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (sale_key) DO NOTHING",
                    (s.sale_key, s.sale_id, s.sold_at, s.album_id, s.quantity, s.store, s.price,
                     now))
        return ImportResult(imported=imported, duplicates=len(sales) - imported)

    def browse_starts(self, since: float, until: float) -> list[BrowseStart]:
        """Browses that start in [since, until): the chain is computed over all earlier
        sightings, so a browse that began before ``since`` is not counted again."""
        backend = self.open()
        with backend.transaction() as tx:
            rows = tx.query(
                "SELECT album_id, camera, ts FROM ("
                " SELECT album_id, camera, ts,"
                "  LAG(ts) OVER (PARTITION BY album_id, camera ORDER BY ts) AS prev"
                " FROM sightings WHERE ts < ?) chained "
                "WHERE ts >= ? AND (prev IS NULL OR ts - prev >= ?) ORDER BY ts",
                (until, since, self.gap_s))
        return [BrowseStart(str(a), str(c), float(t)) for a, c, t in rows]

    def sales_between(self, since: float, until: float) -> list[SaleFact]:
        backend = self.open()
        with backend.transaction() as tx:
            rows = tx.query("SELECT album_id, sold_at, quantity FROM sales "
                            "WHERE sold_at >= ? AND sold_at < ? ORDER BY sold_at", (since, until))
        return [SaleFact(str(a), float(t), int(q)) for a, t, q in rows]

    def counts(self) -> dict[str, int]:
        backend = self.open()
        with backend.transaction() as tx:
            sightings = tx.query("SELECT COUNT(*) FROM sightings")[0][0]
            sales = tx.query("SELECT COUNT(*) FROM sales")[0][0]
        return {"sightings": int(sightings), "sales": int(sales)}

    def purge_expired(self, now: float | None = None) -> int:
        """Delete sightings older than the retention period; returns how many."""
        if self.retention_days <= 0 or self._backend is None:
            return 0
        cutoff = (now if now is not None else time.time()) - self.retention_days * DAY_S
        with self._backend.transaction() as tx:
            removed = tx.execute("DELETE FROM sightings WHERE ts < ?", (cutoff,))
        if removed:
            log.info("retention: %d sightings older than %d days deleted", removed,
                     self.retention_days)
        return removed
