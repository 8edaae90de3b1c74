"""Times at the edges through the real app: out-of-range times are a clear 422 or a rejected
sales row (never a 500 later in a report), a sighting older than the retention period is
refused rather than acknowledged and purged, and an unreadable CSV line stops nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from tests.conftest import app_client

REPORTS = ("albums", "unsold", "hours", "cameras")
FAR = ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "1969-12-31T23:59:59Z",
       "2100-01-01T00:00:00Z")


def cover(catalog_dir: Path, album_id: str) -> bytes:
    return (catalog_dir / "images" / f"{album_id}.png").read_bytes()


def sightings(client: TestClient) -> int:
    return int(client.app.state.analytics.counts()["sightings"])  # type: ignore[attr-defined]


@pytest.mark.parametrize("param", [{"until": "0001-01-10"}, {"since": "0001-01-01"},
                                   {"until": "9999-12-31T23:59:59-14:00"},
                                   {"since": "2026-01-01", "until": "2100-01-02"}])
def test_report_window_off_the_calendar_is_422(client: TestClient,
                                               param: dict[str, str]) -> None:
    for path in REPORTS:
        r = client.get(f"/analytics/{path}", params=param)
        assert r.status_code == 422, (path, r.status_code, r.text)
        assert "1970-01-01..2100-01-01" in r.json()["detail"]


def test_captured_at_off_the_calendar_is_422_and_stores_nothing(
        client: TestClient, catalog_dir: Path) -> None:
    image = {"image": ("c.png", cover(catalog_dir, "alb-003"))}
    for when in FAR:
        r = client.post("/identify", files=image, data={"camera": "c1", "captured_at": when})
        assert r.status_code == 422, (when, r.text)
        assert "captured_at" in r.json()["detail"] and "1970" in r.json()["detail"]
    assert sightings(client) == 0
    assert client.get("/analytics/hours").status_code == 200


def test_sales_rows_off_the_calendar_are_rejected_and_reports_work(client: TestClient) -> None:
    rows = ["sold_at,album_id,quantity,sale_id", "2026-03-01T12:00:00Z,alb-001,1,S1"]
    rows += [f"{when},alb-001,1,F{i}" for i, when in enumerate(FAR)]
    rows.append("2026-03-01T13:00:00Z,alb-002,2,S2")
    r = client.post("/sales", files={"file": ("s.csv", ("\n".join(rows) + "\n").encode())})
    assert r.status_code == 200
    body = r.json()
    assert body["imported"] == 2
    assert [x["line"] for x in body["rejected"]] == [3, 4, 5, 6]
    assert all("outside 1970-01-01..2100-01-01" in x["error"] for x in body["rejected"])
    window = {"since": "1970-01-01T00:00:00Z", "until": "2099-12-31T00:00:00Z"}
    r = client.get("/analytics/hours", params=window)
    assert r.status_code == 200
    assert sum(h["sales"] for h in r.json()["hours"]) == 3


def test_unreadable_csv_line_is_rejected_and_the_rest_imported(client: TestClient) -> None:
    oversized = "x" * 131_073  # one over csv's default field size limit
    lines = ["sold_at,album_id,quantity,sale_id,store",
             "2026-03-01T12:00:00Z,alb-001,1,S1,main",
             f"2026-03-01T12:01:00Z,alb-001,1,S2,{oversized}",
             "2026-03-01T12:02:00Z,alb-002,1,S3,main",
             "2026-03-01T12:03:00Z,alb-003,1,S4,main"]
    r = client.post("/sales", files={"file": ("s.csv", ("\n".join(lines) + "\n").encode())})
    assert r.status_code == 200
    body = r.json()
    assert body["imported"] == 3 and body["duplicates"] == 0
    assert [x["line"] for x in body["rejected"]] == [3]
    assert "unreadable CSV" in body["rejected"][0]["error"]
    assert oversized not in r.text
    assert client.app.state.analytics.counts()["sales"] == 3  # type: ignore[attr-defined]


def test_unreadable_header_line_is_422_and_imports_nothing(client: TestClient) -> None:
    header = "sold_at,album_id,quantity,sale_id," + "x" * 131_073  # over csv's field limit
    body = header + "\n2026-03-01T12:00:00Z,alb-001,1,S1,main\n"
    r = client.post("/sales", files={"file": ("s.csv", body.encode())})
    assert r.status_code == 422
    assert "unreadable header line" in r.json()["detail"]
    assert client.app.state.analytics.counts()["sales"] == 0  # type: ignore[attr-defined]
    assert client.get("/analytics/hours").status_code == 200


def test_sighting_older_than_retention_is_422_not_acknowledged_then_purged(
        make_settings: Callable[..., Settings], catalog_dir: Path) -> None:
    image = {"image": ("c.png", cover(catalog_dir, "alb-004"))}
    now = datetime.now(UTC)
    with app_client(make_settings(sightings_retention_days=30)) as client:
        old = (now - timedelta(days=31)).isoformat()
        r = client.post("/identify", files=image, data={"camera": "c1", "captured_at": old})
        assert r.status_code == 422 and "30-day retention" in r.json()["detail"]
        assert sightings(client) == 0
        # Without camera nothing is stored: the crop is still identified.
        r = client.post("/identify", files=image, data={"captured_at": old})
        assert r.status_code == 200 and r.json()["identified"] == "alb-004"
        recent = (now - timedelta(days=29)).isoformat()
        r = client.post("/identify", files=image, data={"camera": "c1", "captured_at": recent})
        assert r.status_code == 200 and sightings(client) == 1
        assert client.app.state.analytics.purge_expired() == 0  # type: ignore[attr-defined]
    with app_client(make_settings(sightings_retention_days=0)) as client:
        r = client.post("/identify", files=image, data={"camera": "c1", "captured_at": old})
        assert r.status_code == 200 and sightings(client) == 2  # retention off: kept for ever
