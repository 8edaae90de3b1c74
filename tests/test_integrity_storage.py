"""The data directory after damage: corrupt cache (defect 3), lost album database (defect 4),
enrolled image gone or unreadable (defect 6). Real files damaged between two real app runs."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from service.store import QUARANTINE
from service.testing.images import new_cover_png
from tests.conftest import add_album, app_client, top_album, wait_ready


def _corrupt_pages(path: Path) -> None:
    """Keep SQLite's 100-byte header, overwrite everything after it with junk."""
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.seek(100)
        fh.write(os.urandom(size - 100))


@pytest.mark.parametrize("damage", ["not a database", "corrupt pages"])
def test_corrupt_cache_is_moved_aside_and_rebuilt(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    settings = make_settings()
    cover = new_cover_png(600)
    with app_client(settings) as client:
        assert add_album(client, "mine", cover)[0] == 201
    cache = settings.data / "embeddings.sqlite3"
    if damage == "not a database":
        cache.write_bytes(b"this is not a SQLite database, just junk\n" * 200)
    else:
        _corrupt_pages(cache)
    bad = cache.read_bytes()
    with caplog.at_level(logging.ERROR), app_client(settings) as client:
        stats = client.get("/readyz").json()
        assert stats["status"] == "ready" and (stats["embedded"], stats["cached"]) == (31, 0)
        assert top_album(client, cover) == "mine"
    kept = [p for p in settings.data.iterdir() if p.name.startswith("embeddings.sqlite3.corrupt-")]
    assert [p.read_bytes() == bad for p in kept] == [True], kept  # kept for a post-mortem
    assert "moved aside" in caplog.text
    with app_client(settings) as client:  # the rebuilt cache works
        stats = client.get("/readyz").json()
        assert (stats["embedded"], stats["cached"]) == (0, 31)


def test_corrupt_album_store_is_never_moved_aside(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    with app_client(settings) as client:
        assert add_album(client, "mine", new_cover_png(601))[0] == 201
    store = settings.data / "albums.sqlite3"
    _corrupt_pages(store)
    bad = store.read_bytes()
    # The real lifespan runs; loading must fail, never "repair" the only copy of the albums.
    with (TestClient(create_app(settings), raise_server_exceptions=False) as client,
          pytest.raises(RuntimeError, match="loading failed")):
        wait_ready(client)
    assert store.read_bytes() == bad
    assert [p.name for p in settings.data.iterdir() if "corrupt" in p.name] == []
    assert [p.name for p in (settings.data / "images").iterdir()] == ["mine.png"]


@pytest.mark.parametrize("loss", ["missing", "empty"])
def test_lost_album_db_quarantines_images(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture, loss: str
) -> None:
    settings = make_settings()
    covers = {"keep-a": new_cover_png(610), "keep-b": new_cover_png(611)}
    with app_client(settings) as client:
        for album_id, cover in covers.items():
            assert add_album(client, album_id, cover)[0] == 201
    for name in ("albums.sqlite3", "albums.sqlite3-wal", "albums.sqlite3-shm"):
        (settings.data / name).unlink(missing_ok=True)
    if loss == "empty":
        (settings.data / "albums.sqlite3").write_bytes(b"")
    with caplog.at_level(logging.ERROR), app_client(settings) as client:
        assert client.get("/catalog/keep-a").status_code == 404
        assert list((settings.data / "images").iterdir()) == []
        held = {p.name: p for p in (settings.data / QUARANTINE).glob("*/*")}
        assert sorted(held) == ["keep-a.png", "keep-b.png"]
        assert held["keep-a.png"].read_bytes() == covers["keep-a"]
        assert "quarantine" in caplog.text and "NOT deleted" in caplog.text
        # Re-enrol as the README says: the file name is the album id.
        path = held["keep-a.png"]
        assert add_album(client, path.stem, path.read_bytes())[0] == 201
        assert top_album(client, covers["keep-a"]) == "keep-a"
    with app_client(settings) as client:
        assert client.get("/catalog/keep-a").json()["image_status"] == "ok"
    assert sorted(p.name for p in (settings.data / QUARANTINE).glob("*/*")) == [
        "keep-a.png", "keep-b.png"]  # the quarantine is never emptied by the service


@pytest.mark.parametrize("status", ["missing", "unreadable"])
def test_album_without_readable_image_is_visible_deletable_readdable(
    make_settings: Callable[..., Settings], status: str
) -> None:
    settings = make_settings()
    cover = new_cover_png(620)
    with app_client(settings) as client:
        assert add_album(client, "ghost", cover)[0] == 201
    image = settings.data / "images" / "ghost.png"
    if status == "missing":
        image.unlink()
    else:
        image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10)
    with app_client(settings) as client:
        got = client.get("/catalog/ghost")
        assert got.status_code == 200 and got.json()["image_status"] == status, got.text
        listed = {a["album_id"]: a for a in client.get("/catalog?limit=100").json()["albums"]}
        assert listed["ghost"]["image_status"] == status
        assert listed["alb-000"]["image_status"] == "ok"
        assert client.get("/readyz").json()["searchable"] == 30
        if status == "missing":
            r = client.get("/catalog/ghost/image")
            assert r.status_code == 404 and "missing" in r.json()["detail"]
        assert top_album(client, cover) != "ghost"
        assert add_album(client, "ghost", cover)[0] == 409  # still there: delete it first
        assert client.delete("/catalog/ghost").status_code == 204
        assert client.get("/catalog/ghost").status_code == 404
        assert add_album(client, "ghost", cover)[0] == 201
        assert top_album(client, cover) == "ghost"
    with app_client(settings) as client:
        assert client.get("/catalog/ghost").json()["image_status"] == "ok"
        assert top_album(client, cover) == "ghost"
