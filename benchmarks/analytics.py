"""Analytics store benchmark: durable sighting writes, sales import and report time vs data size.

    .venv/bin/python benchmarks/analytics.py --sightings 20000 200000 --sales 10000

For SQLite (data dir) and PostgreSQL (a throwaway server from Debian's package, as the tests
start it; skipped when not installed): median latency of one durable ``add_sighting`` (the
work a /identify with ``camera`` adds), the time to import a sales file in one transaction,
and the median time of the per-album report over 30 days of sightings. Writes
benchmarks/reports/analytics.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from service.analytics import reports
from service.analytics.sales_csv import Sale
from service.analytics.store import AnalyticsStore
from service.testing.postgres import PostgresServer, find_bindir

ROOT = Path(__file__).resolve().parents[1]

DAY = 86_400.0
NOW = 1_780_000_000.0
ALBUMS, CAMERAS = 5000, 8


def median_s(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def fill_sightings(store: AnalyticsStore, n: int, seed: int = 0) -> None:
    """``n`` sightings over 30 days in one transaction (bulk load, not the measured path)."""
    import random

    rng = random.Random(seed)
    with store.open().transaction() as tx:
        for _ in range(n):
            tx.execute("INSERT INTO sightings (album_id, camera, ts, confidence, recorded_at) "
                       "VALUES (?, ?, ?, ?, ?)",
                       (f"a{rng.randrange(ALBUMS):05d}", f"cam{rng.randrange(CAMERAS)}",
                        NOW - rng.random() * 30 * DAY, 0.9, NOW))


def measure(url: str | None, work: Path, sizes: list[int], n_sales: int) -> list[str]:
    store = AnalyticsStore(url, work, 60.0, 0)
    store.open()
    single = median_s(lambda: store.add_sighting("a00001", "cam0", NOW + 10 * DAY, 0.9), 200)
    sales = [Sale(i, f"id:{i}", str(i), NOW - (i % 30) * DAY, f"a{i % ALBUMS:05d}", 1, None, None)
             for i in range(n_sales)]
    started = time.perf_counter()
    result = store.import_sales(sales)
    imported_s = time.perf_counter() - started
    assert result.imported == n_sales
    rows = [f"| {store.dialect} | one durable sighting (median of 200) | "
            f"{single * 1e3:.2f} ms |",
            f"| {store.dialect} | import {n_sales} sale rows, one transaction | "
            f"{imported_s:.2f} s ({n_sales / imported_s:,.0f} rows/s) |"]
    loaded = 0
    for n in sizes:
        fill_sightings(store, n - loaded, seed=n)
        loaded = n

        def report() -> object:
            since, until = NOW - 30 * DAY, NOW + 1
            return reports.album_rows(store.browse_starts(since, until),
                                      store.sales_between(since, until), lambda a: (None, None))

        rows.append(f"| {store.dialect} | /analytics/albums over 30 days, {n:,} sightings "
                    f"(median of 5) | {median_s(report, 5):.2f} s |")
    store.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sightings", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--sales", type=int, default=10_000)
    args = parser.parse_args()
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += measure(None, Path(tmp) / "sqlite", args.sightings, args.sales)
        bindir = find_bindir()
        if bindir is None:
            rows.append("| postgresql | not installed here: skipped | |")
        else:
            server = PostgresServer(bindir)
            try:
                server.start()
                url = server.create_database("bench")
                rows += measure(url, Path(tmp) / "pg", args.sightings, args.sales)
            finally:
                server.stop()
    report = "\n".join([
        "# Analytics store", "",
        f"`python benchmarks/analytics.py --sightings {' '.join(map(str, args.sightings))} "
        f"--sales {args.sales}`; {ALBUMS} albums, {CAMERAS} cameras, sightings spread over 30 "
        "days; PostgreSQL 15 is a local throwaway server (fsync=on, synchronous_commit=on, "
        "wal_sync_method=fdatasync), SQLite in WAL with synchronous=FULL, both on the same "
        "ext4 disk. Shared 2-core machine (other jobs running).", "",
        "| Backend | What | Time |", "|---|---|---|", *rows, ""])
    print(report)
    out = ROOT / "benchmarks" / "reports" / "analytics.md"
    out.write_text(report)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
