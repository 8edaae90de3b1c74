"""Sightings, /sales and /analytics/* through the real app: validation, access, metrics, outages."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.config import Settings
from tests.conftest import app_client

T = "2026-03-01T12:00:00+00:00"


def cover(catalog_dir: Path, album_id: str) -> bytes:
    return (catalog_dir / "images" / f"{album_id}.png").read_bytes()


@pytest.mark.parametrize(("camera", "captured_at", "fragment"), [
    ("a" * 65, T, "camera"),
    ("aisle 1", T, "camera"),
    ("aisle/1", T, "camera"),
    ("aisle-1", "2026-03-01T12:00:00", "offset"),
    ("aisle-1", "noon", "ISO 8601"),
])
def test_bad_camera_or_time_is_422_and_stores_nothing(
        make_settings: Callable[..., Settings], catalog_dir: Path, camera: str,
        captured_at: str, fragment: str) -> None:
    with app_client(make_settings()) as client:
        r = client.post("/identify", files={"image": ("c.png", cover(catalog_dir, "alb-001"))},
                        data={"camera": camera, "captured_at": captured_at})
        assert r.status_code == 422 and fragment in str(r.json()["detail"])
        assert client.app.state.analytics.counts()["sightings"] == 0  # type: ignore[attr-defined]


def test_sightings_need_camera_and_count_in_metrics(
        make_settings: Callable[..., Settings], catalog_dir: Path,
        catalog_rows: list[dict[str, str]]) -> None:
    # Retention off: T is a fixed date that a 365-day retention would one day refuse.
    with app_client(make_settings(sightings_retention_days=0)) as client:
        image = {"image": ("c.png", cover(catalog_dir, "alb-005"))}
        assert client.post("/identify", files=image).json()["identified"] == "alb-005"
        for when in (T, "2026-03-01T12:00:30Z", "2026-03-01T13:00:00+01:00"):
            r = client.post("/identify", files=image, data={"camera": "c.1_x-Y", "captured_at":
                                                             when})
            assert r.status_code == 200
        store = client.app.state.analytics  # type: ignore[attr-defined]
        assert store.counts()["sightings"] == 3  # the call without camera stored nothing
        text = client.get("/metrics").text
        # The sample line itself, unlabelled: no album id may leak into a metric's labels.
        assert re.findall(r"^cratewatch_sightings_total(\S*) (\S+)$", text, re.M) == [("", "3.0")]
        # 12:00:00 and 12:00:30 are one browse; 13:00+01:00 is 12:00:00 UTC again: same browse
        assert re.findall(r"^cratewatch_browses_total(\S*) (\S+)$", text, re.M) == [("", "1.0")]
        r = client.get("/analytics/albums", params={"since": "2026-03-01T00:00:00Z",
                                                    "until": "2026-03-02T00:00:00Z"})
        row = next(c for c in catalog_rows if c["album_id"] == "alb-005")
        assert r.json()["albums"] == [{"album_id": "alb-005", "artist": row["artist"],
                                       "title": row["title"], "browses": 1, "sales": 0,
                                       "conversion": 0.0}]


def test_key_guards_sales_reports_and_sightings_only(make_settings: Callable[..., Settings],
                                                    catalog_dir: Path) -> None:
    with app_client(make_settings(api_key="k3y")) as client:
        image = {"image": ("c.png", cover(catalog_dir, "alb-002"))}
        assert client.post("/identify", files=image).status_code == 200
        assert client.post("/identify", files=image, data={"camera": "c1"}).status_code == 401
        assert client.post("/identify", files=image, data={"camera": "c1"},
                           headers={"X-API-Key": "k3y"}).status_code == 200
        sales = {"file": ("s.csv", b"sold_at,album_id,quantity\n2026-03-01,alb-002,1\n")}
        assert client.post("/sales", files=sales).status_code == 401
        for path in ("albums", "unsold", "hours", "cameras"):
            assert client.get(f"/analytics/{path}").status_code == 401
            assert client.get(f"/analytics/{path}", headers={"X-API-Key": "k3y"}
                              ).status_code == 200
        r = client.post("/sales", files=sales, headers={"X-API-Key": "k3y"})
        assert r.json() == {"imported": 1, "duplicates": 0, "rejected": []}


def test_bad_sales_file_and_window_are_422(client: TestClient) -> None:
    r = client.post("/sales", files={"file": ("s.csv", b"album,qty\n")})
    assert r.status_code == 422 and "misses sold_at" in r.json()["detail"]
    assert client.post("/sales").status_code == 422
    r = client.get("/analytics/albums", params={"since": "2026-03-02", "until": "2026-03-01"})
    assert r.status_code == 422 and "before" in r.json()["detail"]
    assert client.get("/analytics/hours", params={"since": "last week"}).status_code == 422
    assert client.get("/analytics/unsold", params={"min_browses": 0}).status_code == 422
    assert client.get("/analytics/albums", params={"format": "xml"}).status_code == 422


def test_unreachable_postgres_answers_503_and_identify_still_works(
        make_settings: Callable[..., Settings], catalog_dir: Path) -> None:
    settings = make_settings(database_url="postgresql://u:s3cr3t@127.0.0.1:1/none")
    with app_client(settings) as client:
        image = {"image": ("c.png", cover(catalog_dir, "alb-001"))}
        assert client.post("/identify", files=image).status_code == 200
        r = client.post("/identify", files=image, data={"camera": "c1"})
        assert r.status_code == 503 and "analytics store unavailable" in r.json()["detail"]
        assert "s3cr3t" not in r.json()["detail"]
        assert client.get("/analytics/albums").status_code == 503


def test_settings_reject_unknown_timezone(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ValidationError, match="time zone"):
        make_settings(timezone="Mars/Olympus")
    assert make_settings(timezone="Europe/Berlin").zone.key == "Europe/Berlin"
    assert make_settings(database_url=" ").database_url is None


def test_unreadable_store_is_kept_as_is_and_only_analytics_stop(
        make_settings: Callable[..., Settings], catalog_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    garbage = b"this is not a SQLite database, and nobody may replace it " * 100
    (data / "analytics.sqlite3").write_bytes(garbage)
    with app_client(make_settings(data=data)) as client:
        image = {"image": ("c.png", cover(catalog_dir, "alb-001"))}
        assert client.post("/identify", files=image).status_code == 200
        r = client.get("/analytics/albums")
        assert r.status_code == 503 and "server log" in r.json()["detail"]
        assert str(data) not in r.text  # paths stay in the log
        assert client.get("/readyz").json()["analytics"] == "unavailable"
    assert (data / "analytics.sqlite3").read_bytes() == garbage  # never moved aside or recreated
    assert sorted(p.name for p in data.iterdir() if p.name.startswith("analytics")) == [
        "analytics.sqlite3"]


def test_retention_is_enforced_at_startup(make_settings: Callable[..., Settings],
                                          tmp_path: Path) -> None:
    import time

    from service.analytics.store import AnalyticsStore

    store = AnalyticsStore(None, tmp_path / "data", 60.0, 0)
    now = time.time()
    store.add_sighting("alb-001", "c1", now - 40 * 86_400, 0.9)
    store.add_sighting("alb-001", "c1", now - 10 * 86_400, 0.9)
    store.close()
    with app_client(make_settings(sightings_retention_days=30)) as client:
        assert client.get("/readyz").json()["analytics"] == "sqlite"
        body = client.get("/analytics/albums", params={
            "since": "2000-01-01T00:00:00Z"}).json()
        assert [(a["album_id"], a["browses"]) for a in body["albums"]] == [("alb-001", 1)]
        assert client.app.state.analytics.counts()["sightings"] == 1  # type: ignore[attr-defined]
