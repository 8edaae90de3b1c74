"""The retention thread survives a failing round: a purge that raises (damaged database, full
disk) is logged and the next round runs, on a real SQLite store."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from service.analytics.store import DAY_S, AnalyticsStore
from service.app import _retention_loop


class FailsOnce(AnalyticsStore):
    """A real store whose first purge fails the way a damaged database does."""

    def __init__(self, data: Path) -> None:
        super().__init__(None, data, 60.0, 30)
        self.rounds = 0
        self.removed: list[int] = []
        self.purged = threading.Event()

    def purge_expired(self, now: float | None = None) -> int:
        self.rounds += 1
        if self.rounds == 1:
            raise sqlite3.DatabaseError("database disk image is malformed")
        removed = super().purge_expired(now)
        self.removed.append(removed)
        self.purged.set()
        return removed


def test_retention_loop_survives_a_failing_round(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    seed = AnalyticsStore(None, tmp_path, 60.0, 0)
    seed.add_sighting("alb-001", "c1", time.time() - 40 * DAY_S, 0.9)
    seed.add_sighting("alb-001", "c1", time.time() - DAY_S, 0.9)
    seed.close()
    store = FailsOnce(tmp_path)
    stop = threading.Event()
    loop = threading.Thread(target=_retention_loop, args=(store, stop, 0.01), daemon=True)
    with caplog.at_level(logging.ERROR, logger="service.app"):
        loop.start()
        assert store.purged.wait(timeout=30), "no round ran after the failing one"
        stop.set()
        loop.join(timeout=30)
    assert not loop.is_alive()  # it ended because it was told to, not by the exception
    assert store.removed[0] == 1 and store.counts()["sightings"] == 1
    assert any("retention round failed" in r.getMessage() and r.exc_info
               for r in caplog.records)
    store.close()
