"""Warm restart: the filled descriptor index is loaded from the data dir instead of re-adding
every cover's descriptors, and it is never trusted blindly (enrol/delete then a crash, damage).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from service.config import Settings
from service.engine import Engine
from service.features import LocalFeatures
from service.metrics import Metrics
from service.testing.images import new_cover_png
from service.testing.server import LiveServer
from tests.conftest import app_client

IVF = {"local_index": "IVF8,SQ8", "local_exact_limit": 0}  # the IVF path on 30 small covers


def _loaded(settings: Settings) -> Engine:
    engine = Engine(settings, Metrics())
    engine.load()
    assert engine.ready, engine.error
    return engine


def _votes(engine: Engine, feats: LocalFeatures) -> dict[str, int]:
    """Album id -> votes of the descriptor index (ids are per process, album ids are not)."""
    out = {}
    for iid, n in engine.catalog.descriptors.votes(feats).items():
        album = engine.catalog.album_of(iid)
        assert album is not None
        out[album.album_id] = n
    return out


def _indexed_albums(engine: Engine) -> set[str]:
    """Albums the vote path holds, by its own range map; checks counts add up too."""
    d = engine.catalog.descriptors
    ids = set()
    for iid in d._ranges:
        album = engine.catalog.album_of(iid)
        assert album is not None, iid
        ids.add(album.album_id)
    assert d.ntotal == sum(len(f) for f in engine.catalog.features.values())
    return ids


def _state_files(data: Path) -> list[Path]:
    return sorted(data.glob("descriptors-filled-*"))


def test_warm_restart_loads_saved_index_with_identical_votes(
        make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings(**IVF)
    first = _loaded(settings)
    assert first.stats["descriptor_index_from"] == "built"
    assert first.stats["local_index"] == "IVF8,SQ8"
    first.close()
    again = _loaded(settings)
    assert again.stats["descriptor_index_from"] == "loaded"
    assert again.stats["descriptors_added"] == 0  # nothing re-added
    assert again.stats["descriptors"] == first.stats["descriptors"]
    fresh = _loaded(make_settings(**IVF, data=tmp_path / "fresh"))  # built from scratch
    assert fresh.stats["descriptor_index_from"] == "built"
    for iid in list(again.catalog.features)[:10]:  # the covers' own features as queries
        feats = again.catalog.features[iid]
        votes = _votes(again, feats)
        assert votes and votes == _votes(fresh, feats)
    again.close()
    fresh.close()


def test_enrol_and_delete_then_crash_restart_holds_current_albums(
        make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    engine = _loaded(settings)
    engine.close()  # clean: the saved state holds the 30 catalog covers
    engine = _loaded(settings)
    assert engine.stats["descriptor_index_from"] == "loaded"
    gone = next(iter(engine.albums))
    gone_feats = engine.catalog.features[engine.catalog.iid_of(gone) or 0]
    new = new_cover_png(77, size=256)
    engine.add(new, "new-1", "a", "t", {})
    engine.delete(gone)
    new_feats = engine.catalog.features[engine.catalog.iid_of("new-1") or 0]
    expected = _indexed_albums(engine)
    assert "new-1" in expected and gone not in expected
    # No close(): what kill -9 leaves (every write acknowledged, the saved index stale).
    restarted = _loaded(settings)
    assert restarted.stats["descriptor_index_from"] == "patched"
    assert restarted.stats["descriptors_added"] == len(new_feats)  # only the new cover
    assert _indexed_albums(restarted) == expected == set(restarted.albums)
    assert max(_votes(restarted, new_feats).items(), key=lambda kv: kv[1])[0] == "new-1"
    assert gone not in _votes(restarted, gone_feats)
    restarted.close()
    assert _loaded(settings).stats["descriptor_index_from"] == "loaded"  # patched state saved


def test_damaged_saved_index_is_moved_aside_and_rebuilt(
        make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(**IVF)
    _loaded(settings).close()
    index_file = next(p for p in _state_files(settings.data) if p.suffix == ".faiss")
    index_file.write_bytes(b"\0" * 64)
    engine = _loaded(settings)
    assert engine.stats["descriptor_index_from"] == "built"
    assert any(".corrupt-" in p.name for p in _state_files(settings.data))
    engine.close()
    manifest = settings.data / next(p.name for p in _state_files(settings.data)
                                    if p.suffix == ".json")
    manifest.write_text('{"format": 1, "file": ')  # torn write
    assert _loaded(settings).stats["descriptor_index_from"] == "built"


def test_sigkill_after_enrol_restarts_with_the_new_album(live_server: LiveServer) -> None:
    live_server.start()
    live_server.stop()  # clean: saved state of the catalog
    live_server.start()
    data = new_cover_png(91, size=256)
    r = httpx.post(f"{live_server.url}/catalog/add", files={"image": ("n.png", data)},
                   data={"artist": "a", "title": "t", "album_id": "after-load"}, timeout=60)
    assert r.status_code == 201, r.text
    live_server.kill()
    live_server.start()
    stats = live_server.wait_ready()
    assert stats["descriptor_index_from"] == "patched"
    assert stats["local_covers"] == stats["searchable"] == 31
    r = httpx.post(f"{live_server.url}/identify", files={"image": ("q.png", data)}, timeout=60)
    assert r.json()["identified"] == "after-load"


def test_app_shutdown_saves_the_index(make_settings: Callable[..., Settings]) -> None:
    with app_client(make_settings()) as c:
        assert c.get("/readyz").json()["descriptor_index_from"] == "built"
    with app_client(make_settings()) as c:
        stats = c.get("/readyz").json()
    assert stats["descriptor_index_from"] == "loaded" and stats["descriptors_added"] == 0


def test_killed_writer_leftovers_are_swept(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    _loaded(settings).close()
    manifest = next(p for p in _state_files(settings.data) if p.suffix == ".json")
    left = settings.data / f"{manifest.stem}.0123abcd.faiss.tmp"  # a kill mid-write leaves it
    left.write_bytes(b"partial")
    engine = _loaded(settings)
    assert engine.stats["descriptor_index_from"] == "loaded"
    assert not left.exists()
    engine.close()
