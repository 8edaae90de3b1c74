"""Enrolment is all-or-nothing as the client sees it (defect 1); duplicate images (defect 14).

The failures are real: another process holds SQLite's write lock on a database the enrolment
writes, as a backup tool or a second service instance would, until the service's busy timeout
(5 s) runs out.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.testing.images import new_cover_png
from tests.conftest import add_album, app_client, top_album


@contextmanager
def write_locked(db: Path) -> Iterator[None]:
    """Hold the write lock of a SQLite database from another connection."""
    conn = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def _nothing_stored(client: TestClient, data_dir: Path, album_id: str, cover: bytes) -> None:
    assert client.get(f"/catalog/{album_id}").status_code == 404
    assert client.delete(f"/catalog/{album_id}").status_code == 404
    assert top_album(client, cover) != album_id
    leftovers = [p.name for p in (data_dir / "images").iterdir()]
    assert leftovers == [], leftovers
    with sqlite3.connect(data_dir / "albums.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM albums").fetchone() == (0,)


@pytest.mark.parametrize("db_name", ["embeddings.sqlite3", "albums.sqlite3"])
def test_enrolment_all_or_nothing_when_a_store_fails(
    make_settings: Callable[..., Settings], db_name: str
) -> None:
    settings = make_settings()
    cover = new_cover_png(500)
    with app_client(settings) as client:
        with write_locked(settings.data / db_name):
            r = client.post("/catalog/add", files={"image": ("c.png", cover, "image/png")},
                            data={"artist": "a", "title": "t", "album_id": "locked-1"})
        # An error the client can act on (retry later), and nothing left behind.
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "1"
        assert "nothing was stored" in r.json()["detail"]
        _nothing_stored(client, settings.data, "locked-1", cover)
        # The retry works and the album is searchable at once.
        assert add_album(client, "locked-1", cover) == (201, {"album_id": "locked-1"})
        assert top_album(client, cover) == "locked-1"
    with app_client(settings) as client:  # and durable
        assert top_album(client, cover) == "locked-1"
        assert client.delete("/catalog/locked-1").status_code == 204


def test_duplicate_image_is_named(client: TestClient, catalog_dir: Path) -> None:
    cover = new_cover_png(510)
    assert add_album(client, "first", cover) == (201, {"album_id": "first"})
    assert add_album(client, "second", cover) == (
        201, {"album_id": "second", "duplicate_of": "first"})
    catalog_cover = (catalog_dir / "images" / "alb-003.png").read_bytes()
    assert add_album(client, "third", catalog_cover) == (
        201, {"album_id": "third", "duplicate_of": "alb-003"})
    assert client.delete("/catalog/first").status_code == 204
    assert add_album(client, "fourth", cover) == (
        201, {"album_id": "fourth", "duplicate_of": "second"})
    for album_id in ("second", "fourth"):
        assert client.delete(f"/catalog/{album_id}").status_code == 204
    assert add_album(client, "fifth", cover) == (201, {"album_id": "fifth"})


def test_duplicate_image_rejected_when_configured(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRATEWATCH_REJECT_DUPLICATE_IMAGES", "true")
    settings = make_settings()
    cover = new_cover_png(520)
    with app_client(settings) as client:
        assert add_album(client, "first", cover) == (201, {"album_id": "first"})
        status, body = add_album(client, "second", cover)
        assert status == 409 and body["duplicate_of"] == "first", body
        assert "'first'" in str(body["detail"])
        assert client.get("/catalog/second").status_code == 404
        assert sorted(p.name for p in (settings.data / "images").iterdir()) == ["first.png"]
        # A different image under the same id is fine.
        assert add_album(client, "second", new_cover_png(521)) == (201, {"album_id": "second"})
