"""Several replicas on one PostgreSQL: migrations run once, and every replica sees every figure."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from service.analytics.migrations import latest_version
from service.analytics.store import AnalyticsStore
from service.config import Settings
from service.testing.postgres import PostgresServer
from tests.conftest import app_client


def test_replicas_starting_together_migrate_once(postgres_server: PostgresServer,
                                                 tmp_path: Path) -> None:
    url = postgres_server.create_database("together")
    stores = [AnalyticsStore(url, tmp_path / f"r{i}", 60.0, 0) for i in range(4)]
    errors: list[BaseException] = []

    def start(store: AnalyticsStore) -> None:
        try:
            store.open()
        except BaseException as exc:  # collected: a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with stores[0].open().transaction() as tx:
        rows = tx.query("SELECT version FROM schema_migrations ORDER BY version")
    assert [r[0] for r in rows] == list(range(1, latest_version() + 1))
    for store in stores:
        store.close()


def test_two_replicas_share_sightings_and_sales(postgres_server: PostgresServer,
                                                make_settings: Callable[..., Settings],
                                                catalog_dir: Path, tmp_path: Path) -> None:
    url = postgres_server.create_database("shared")
    cover = (catalog_dir / "images" / "alb-009.png").read_bytes()
    window = {"since": "2026-03-01T00:00:00Z", "until": "2026-03-02T00:00:00Z"}
    # Retention off: these fixed dates would one day fall outside a 365-day retention (422).
    kept = {"database_url": url, "sightings_retention_days": 0}
    with app_client(make_settings(data=tmp_path / "a", **kept)) as a, \
            app_client(make_settings(data=tmp_path / "b", **kept)) as b:
        for client, when in ((a, "2026-03-01T10:00:00Z"), (b, "2026-03-01T10:00:30Z"),
                             (b, "2026-03-01T12:00:00Z")):
            r = client.post("/identify", files={"image": ("c.png", cover)},
                            data={"camera": "door", "captured_at": when})
            assert r.json()["identified"] == "alb-009"
        sales = b"sold_at,album_id,quantity,sale_id\n2026-03-01T11:00:00Z,alb-009,1,X1\n"
        assert a.post("/sales", files={"file": ("s.csv", sales)}).json()["imported"] == 1
        assert b.post("/sales", files={"file": ("s.csv", sales)}).json()["duplicates"] == 1
        # a's sighting and b's follow-up 30 s later are one browse, across replicas
        for client in (a, b):
            rows = client.get("/analytics/albums", params=window).json()["albums"]
            assert [(r["album_id"], r["browses"], r["sales"], r["conversion"]) for r in rows] == [
                ("alb-009", 2, 1, 0.5)]
