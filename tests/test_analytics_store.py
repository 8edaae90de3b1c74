"""The analytics store on SQLite and on a real PostgreSQL: migrations, browses, sales, retention."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from service.analytics.db import AnalyticsUnavailable
from service.analytics.migrations import latest_version
from service.analytics.sales_csv import BadSalesFile, parse_sales
from service.analytics.store import AnalyticsStore

T0 = 1_780_000_000.0  # a fixed instant: the figures below do not depend on the clock
UTC = ZoneInfo("UTC")


def make_store(url: str | None, data: Path, gap: float = 60.0, days: int = 0) -> AnalyticsStore:
    store = AnalyticsStore(url, data, gap, days)
    store.open()
    return store


def test_migrations_run_once_and_are_recorded(analytics_db: str | None, tmp_path: Path) -> None:
    store = make_store(analytics_db, tmp_path)
    store.close()
    again = make_store(analytics_db, tmp_path)  # a restart applies nothing new
    backend = again.open()
    with backend.transaction() as tx:
        rows = tx.query("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [r[0] for r in rows] == list(range(1, latest_version() + 1))
    again.close()


def test_newer_schema_is_refused_not_repaired(analytics_db: str | None, tmp_path: Path) -> None:
    store = make_store(analytics_db, tmp_path)
    with store.open().transaction() as tx:
        tx.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                   (latest_version() + 1, "from the future", 0.0))
        tx.execute("INSERT INTO sightings (album_id, camera, ts, confidence, recorded_at) "
                   "VALUES ('a', 'c', 1, 1, 1)")
    store.close()
    with pytest.raises(AnalyticsUnavailable, match="newer"):
        make_store(analytics_db, tmp_path)
    if analytics_db is None:  # the file is still there, untouched: never moved aside
        assert (tmp_path / "analytics.sqlite3").is_file()


def test_browses_chain_from_sighting_to_sighting(analytics_db: str | None, tmp_path: Path
                                                 ) -> None:
    store = make_store(analytics_db, tmp_path, gap=60.0)
    # a/cam1: 0, 50, 100 (chained: one browse although 100 s after the first), then 200 (new)
    for dt in (0, 50, 100, 200):
        store.add_sighting("a", "cam1", T0 + dt, 0.9)
    store.add_sighting("a", "cam2", T0 + 10, 0.9)  # other camera: its own browse
    store.add_sighting("b", "cam1", T0 + 20, 0.9)  # other album: its own browse
    starts = store.browse_starts(T0 - 1, T0 + 1000)
    assert sorted((s.album_id, s.camera, s.ts - T0) for s in starts) == [
        ("a", "cam1", 0.0), ("a", "cam1", 200.0), ("a", "cam2", 10.0), ("b", "cam1", 20.0)]
    # exactly the gap apart is a new browse (< gap joins)
    store.add_sighting("c", "cam1", T0, 0.9)
    store.add_sighting("c", "cam1", T0 + 60, 0.9)
    assert len([s for s in store.browse_starts(T0 - 1, T0 + 1000) if s.album_id == "c"]) == 2
    store.close()


def test_late_sighting_lands_in_the_right_browse(analytics_db: str | None, tmp_path: Path
                                                 ) -> None:
    store = make_store(analytics_db, tmp_path, gap=60.0)
    store.add_sighting("a", "cam1", T0, 0.9)
    store.add_sighting("a", "cam1", T0 + 100, 0.9)
    assert len(store.browse_starts(T0 - 1, T0 + 1000)) == 2
    # arrives last, captured in between: it bridges the two into one browse
    assert store.add_sighting("a", "cam1", T0 + 50, 0.9) is False
    assert [s.ts - T0 for s in store.browse_starts(T0 - 1, T0 + 1000)] == [0.0]
    # a browse that began before `since` is not counted again inside the window
    assert store.browse_starts(T0 + 40, T0 + 1000) == []
    store.close()


def test_sales_dedupe_by_sale_id_and_by_row(analytics_db: str | None, tmp_path: Path) -> None:
    store = make_store(analytics_db, tmp_path)
    csv = (b"sold_at,album_id,quantity,sale_id,store,price\n"
           b"2026-05-28T10:00:00Z,a,1,S1,main,12.50\n"
           b"2026-05-28T10:05:00Z,a,2,S1,main,12.50\n"    # same sale_id: duplicate
           b"2026-05-28T11:00:00,b,-1,,main,\n"          # a return, no sale_id, shop time
           b"2026-05-28T11:00:00,b,-1,,main,\n")         # same content: duplicate
    parsed = parse_sales(csv, UTC, lambda a: a in {"a", "b"})
    assert parsed.rejected == []
    first = store.import_sales(parsed.sales)
    assert (first.imported, first.duplicates) == (2, 2)
    again = store.import_sales(parse_sales(csv, UTC, lambda a: True).sales)
    assert (again.imported, again.duplicates) == (0, 4)
    facts = store.sales_between(0, 4e9)
    assert sorted((f.album_id, f.quantity) for f in facts) == [("a", 1), ("b", -1)]
    assert store.counts()["sales"] == 2
    store.close()


def test_retention_deletes_old_sightings_only(analytics_db: str | None, tmp_path: Path) -> None:
    store = make_store(analytics_db, tmp_path, days=30)
    store.add_sighting("a", "cam1", T0 - 31 * 86_400, 0.9)
    store.add_sighting("a", "cam1", T0 - 29 * 86_400, 0.9)
    assert store.purge_expired(now=T0) == 1
    assert [s.ts for s in store.browse_starts(0, 4e9)] == [T0 - 29 * 86_400]
    store.close()


def test_unreachable_postgres_is_503_material_not_a_crash(tmp_path: Path) -> None:
    store = AnalyticsStore("postgresql://nobody:s3cret@127.0.0.1:1/none", tmp_path, 60.0, 0)
    with pytest.raises(AnalyticsUnavailable, match="cannot connect") as caught:
        store.open()
    assert "s3cret" not in str(caught.value)  # the password never reaches logs or responses


@pytest.mark.parametrize(("body", "message"), [
    (b"", "empty file"),
    (b"when,album_id,quantity\n", "misses sold_at"),
    (b"sold_at,album_id,quantity,saleid\n", "unknown columns saleid"),
    (b"\xff\xfe\x00bad", "not UTF-8"),
])
def test_unusable_sales_files_are_refused_whole(body: bytes, message: str) -> None:
    with pytest.raises(BadSalesFile, match=message):
        parse_sales(body, UTC, lambda a: True)


def test_bad_rows_are_reported_by_line_and_never_stop_the_rest() -> None:
    csv = (b"sold_at,album_id,quantity\n"
           b"yesterday,a,1\n"            # line 2: bad time
           b"2026-05-28T10:00:00Z,zz,1\n"  # line 3: unknown album
           b"2026-05-28T10:00:00Z,a,x\n"   # line 4: bad quantity
           b"2026-05-28T10:00:00Z,a,0\n"   # line 5: zero
           b"2026-05-28T10:00:00Z,a\n"     # line 6: missing field
           b"\n"                           # line 7: blank, skipped
           b"2026-05-28T10:00:00+02:00,a,3\n")  # line 8: fine
    parsed = parse_sales(csv, UTC, lambda a: a == "a")
    assert [r["line"] for r in parsed.rejected] == [2, 3, 4, 5, 6]
    assert "unknown album_id 'zz'" in str(parsed.rejected[1]["error"])
    assert [(s.line, s.quantity, s.sold_at) for s in parsed.sales] == [(8, 3, 1_779_955_200.0)]


def test_import_sales_cli_matches_the_api(analytics_db: str | None, tmp_path: Path,
                                          catalog_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from service.cli import main

    if analytics_db:
        monkeypatch.setenv("CRATEWATCH_DATABASE_URL", analytics_db)
    csv = tmp_path / "sales.csv"
    csv.write_text("sold_at,album_id,quantity\n2026-03-01T10:00,alb-001,2\n"
                   "2026-03-01T10:00,alb-001,2\n2026-03-01T11:00,gone,1\n")
    args = ["import-sales", str(csv), "--catalog", str(catalog_dir), "--data",
            str(tmp_path / "data")]
    assert main(args) == 1  # a row was rejected
    assert json.loads(capsys.readouterr().out) == {
        "imported": 1, "duplicates": 1,
        "rejected": [{"line": 4, "error": "unknown album_id 'gone'"}]}
    assert main(args) == 1
    assert json.loads(capsys.readouterr().out)["duplicates"] == 2
    assert main(["import-sales", str(tmp_path / "missing.csv")]) == 2


def test_postgres_reconnects_after_the_server_dropped_the_connection(
        postgres_server: object, tmp_path: Path) -> None:
    import psycopg

    from service.analytics.db import PostgresBackend
    from service.testing.postgres import PostgresServer

    assert isinstance(postgres_server, PostgresServer)
    url = postgres_server.create_database("reconnect")
    store = make_store(url, tmp_path)
    store.add_sighting("a", "cam1", T0, 0.9)
    backend = store.open()
    assert isinstance(backend, PostgresBackend)
    backend.ping_after_s = 0.0  # as if idle for long
    with psycopg.connect(url, autocommit=True) as admin:  # what a server restart or proxy does
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE application_name = 'cratewatch'")
    store.add_sighting("a", "cam1", T0 + 600, 0.9)  # no error: reconnected before the write
    assert store.counts()["sightings"] == 2
    store.close()


def test_csv_times_without_offset_are_shop_time() -> None:
    csv = (b"sold_at,album_id,quantity\n"
           b"2026-07-01T14:00:00,a,1\n"          # Berlin summer time: 12:00 UTC
           b"2026-12-01 14:00,a,1\n"             # winter: 13:00 UTC
           b"2026-12-01T14:00:00-05:00,a,1\n")   # an explicit offset wins
    parsed = parse_sales(csv, ZoneInfo("Europe/Berlin"), lambda a: True)
    from datetime import UTC, datetime
    assert [datetime.fromtimestamp(s.sold_at, UTC).strftime("%m-%d %H:%M") for s in
            parsed.sales] == ["07-01 12:00", "12-01 13:00", "12-01 19:00"]
