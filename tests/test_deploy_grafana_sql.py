"""The dashboard's analytics SQL on a real PostgreSQL, as Grafana's read-only role sees it.

The compose init script (deploy/postgres/initdb/) creates ``grafana_reader``; cratewatch's own
migrations create the tables; each panel's SQL, with Grafana's macros expanded the way Grafana
expands them, runs as that role and gives the same figures as GET /analytics/albums.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from service.analytics import reports
from service.analytics.store import AnalyticsStore
from service.testing.postgres import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
INIT = ROOT / "deploy" / "postgres" / "initdb" / "10-grafana-reader.sh"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "cratewatch.json"
T0, GAP = 1_780_000_000.0, 60.0


def expand(sql: str, since: float, until: float) -> str:
    """Grafana's PostgreSQL macros for epoch-seconds columns, and the dashboard variable."""
    sql = re.sub(r"\$__unixEpochFilter\((\w+)\)",
                 lambda m: f"{m[1]} >= {since} AND {m[1]} <= {until}", sql)
    sql = re.sub(r"\$__unixEpochGroupAlias\((\w+), 1h\)",
                 lambda m: f"floor({m[1]}/3600)*3600 AS time", sql)
    assert "$__" not in sql, sql
    return sql.replace("$browse_gap_s", str(int(GAP)))


def panel_sql() -> dict[str, str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return {p["title"]: p["targets"][0]["rawSql"] for p in panels if "rawSql" in p["targets"][0]}


@pytest.fixture
def reader_and_store(postgres_server: PostgresServer, tmp_path: Path) -> Any:
    import psycopg

    url = postgres_server.create_database("cratewatch")
    env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(postgres_server.port),
           "POSTGRES_USER": "cratewatch", "POSTGRES_DB": "cratewatch",
           "GRAFANA_DB_PASSWORD": "reader-pw"}
    done = subprocess.run(["sh", str(INIT)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    store = AnalyticsStore(url, tmp_path, GAP, 0)
    store.open()  # migrations run as cratewatch, after the init script: as in compose
    reader = psycopg.connect(url.replace("cratewatch@", "grafana_reader@", 1), autocommit=True)
    yield reader, store
    reader.close()
    store.close()


def test_panels_match_the_api_figures_and_cannot_write(reader_and_store: Any) -> None:
    import psycopg

    reader, store = reader_and_store
    for album, ts in (("a", 0), ("a", 30), ("a", 200), ("b", 10), ("b", 4000)):
        store.add_sighting(album, "cam", T0 + ts, 0.9)
    from service.analytics.sales_csv import Sale
    store.import_sales([Sale(2, "id:1", "1", T0 + 50, "a", 1, None, None),
                        Sale(3, "id:2", "2", T0 + 60, "c", 2, None, None)])
    since, until = T0 - 3600, T0 + 86_400
    sql = panel_sql()
    table = reader.execute(expand(sql["Browse vs buy by album (dashboard time range)"], since,
                                  until)).fetchall()
    api = reports.album_rows(store.browse_starts(since, until), store.sales_between(since, until),
                             lambda a: (None, None))
    assert [(r[0], r[1], r[2], None if r[3] is None else float(r[3])) for r in table] == [
        (r["album_id"], r["browses"], r["sales"],
         None if r["conversion"] is None else round(float(r["conversion"]), 3))  # type: ignore[arg-type]
        for r in api]
    browses = reader.execute(expand(sql["Browses per hour (analytics store)"], since, until)
                             ).fetchall()
    assert sum(int(n) for _, n in browses) == 4 == len(store.browse_starts(since, until))
    units = reader.execute(expand(sql["Units sold per hour (analytics store)"], since, until)
                           ).fetchall()
    assert sum(int(n) for _, n in units) == 3
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        reader.execute("DELETE FROM sales")
