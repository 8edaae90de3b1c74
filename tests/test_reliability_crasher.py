"""Crasher (qdrant-crasher style): SIGKILL the server at random moments while a writer enrols and
deletes albums; no acknowledged write is ever lost and nothing is left half-present.

Bounded: KILLS SIGKILLs, each after a random 0.3-2 s of writing, plus one while starting up
after every fourth, and a last one with planted leftovers. Figures are printed, and written
as JSON to ``$CRATEWATCH_RELIABILITY_OUT/crasher.json`` when that variable is set.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from service.store import TMP_PREFIX
from service.testing.images import new_cover_png
from service.testing.server import LiveServer

KILLS = 8
MAX_ALBUMS = 400  # a hard stop for the writer, whatever the timing


@dataclass
class Ledger:
    """What the writer was told: acknowledged (201/204) versus in doubt (no answer)."""

    acked: dict[str, int] = field(default_factory=dict)  # album_id -> cover seed
    deleted: set[str] = field(default_factory=set)
    in_doubt_add: dict[str, int] = field(default_factory=dict)
    in_doubt_delete: set[str] = field(default_factory=set)
    refused: int = 0  # connection refused: the server was down, nothing was sent


class Writer(threading.Thread):
    """Enrols ``crash-N`` albums one after another; deletes every third acknowledged one."""

    def __init__(self, server: LiveServer) -> None:
        super().__init__(daemon=True)
        self.server, self.ledger, self.stop = server, Ledger(), threading.Event()
        self.client = httpx.Client(timeout=httpx.Timeout(20.0, connect=2.0))
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._write()
        except BaseException as exc:  # surfaced by the test, not lost in a thread
            self.error = exc

    def _write(self) -> None:
        for n in range(MAX_ALBUMS):
            if self.stop.is_set():
                break
            self._add(f"crash-{n:04d}", n)
            if len(self.ledger.acked) % 3 == 0 and self.ledger.acked:
                self._delete_one()
            time.sleep(0.03)  # a steady writer, not a CPU hog on a shared machine

    def _add(self, album_id: str, seed: int) -> None:
        try:
            r = self.client.post(f"{self.server.url}/catalog/add",
                                 files={"image": ("c.png", new_cover_png(seed), "image/png")},
                                 data={"artist": "crasher", "title": album_id,
                                       "album_id": album_id})
        except httpx.ConnectError:
            self.ledger.refused += 1
            time.sleep(0.1)
            return
        except httpx.TransportError:
            self.ledger.in_doubt_add[album_id] = seed
            return
        if r.status_code == 503:  # still loading after a restart: refused before any write
            self.ledger.refused += 1
            time.sleep(0.1)
            return
        assert r.status_code == 201, r.text
        self.ledger.acked[album_id] = seed

    def _delete_one(self) -> None:
        candidates = sorted(set(self.ledger.acked) - self.ledger.deleted
                            - self.ledger.in_doubt_delete)
        if not candidates:
            return
        album_id = candidates[len(candidates) // 2]
        try:
            r = self.client.delete(f"{self.server.url}/catalog/{album_id}")
        except httpx.ConnectError:
            self.ledger.refused += 1
            return
        except httpx.TransportError:
            self.ledger.in_doubt_delete.add(album_id)
            return
        if r.status_code == 503:
            self.ledger.refused += 1
            return
        assert r.status_code == 204, r.text
        self.ledger.deleted.add(album_id)


def _records(data: Path) -> dict[str, str]:
    """album_id -> image file name, read straight from the store (read-only)."""
    db = sqlite3.connect(f"file:{data / 'albums.sqlite3'}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT album_id, image FROM albums"))
    finally:
        db.close()


def _no_record_without_image(data: Path) -> int:
    """Checked on the killed data dir, before startup repairs anything: must be 0."""
    return sum(not (data / "images" / name).is_file() for name in _records(data).values())


def _all_album_ids(client: httpx.Client, url: str) -> set[str]:
    ids: set[str] = set()
    offset = 0
    while True:
        page = client.get(f"{url}/catalog", params={"offset": offset, "limit": 1000}).json()
        ids |= {a["album_id"] for a in page["albums"]}
        offset += page["limit"]
        if offset >= page["total"]:
            return ids


def _present(client: httpx.Client, url: str, album_id: str, seed: int) -> bool:
    """Fully present: record served, image served, and its own cover ranks it first."""
    if client.get(f"{url}/catalog/{album_id}").status_code != 200:
        return False
    assert client.get(f"{url}/catalog/{album_id}/image").status_code == 200, album_id
    r = client.post(f"{url}/identify", files={"image": ("c.png", new_cover_png(seed))})
    assert r.status_code == 200, r.text
    top = r.json()["matches"][0]
    # Present in both paths: the embedding ranks it and its stored local features verify it.
    return bool(top["album_id"] == album_id and top["inliers"] > 0)


def test_crasher(tiny_model: Path, catalog_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = LiveServer(catalog_dir, data, tiny_model, tmp_path / "logs")
    rng = random.Random(5)
    half_present_on_disk = startup_kills = 0
    server.start()
    writer = Writer(server)
    writer.start()
    try:
        for n in range(KILLS):
            time.sleep(rng.uniform(0.3, 2.0))
            server.kill()
            half_present_on_disk += _no_record_without_image(data)
            if n % 4 == 3:  # now and then, also kill it while it starts up and reconciles
                server.start(wait_ready=False)
                time.sleep(rng.uniform(0.0, 0.8))
                server.kill()
                startup_kills += 1
                half_present_on_disk += _no_record_without_image(data)
            server.start()  # raises with the log if a restart fails or never gets ready
    finally:
        writer.stop.set()
        writer.join(timeout=60)
    ledger = writer.ledger

    # One more kill with planted leftovers: startup must sweep temp files and orphan images.
    server.kill()
    half_present_on_disk += _no_record_without_image(data)
    (data / "images" / f"{TMP_PREFIX}planted").write_bytes(b"half a write")
    (data / "images" / "orphan-planted.png").write_bytes(new_cover_png(9999))
    server.start(wait_ready=False)
    stats = server.wait_ready()
    leftovers = [p.name for p in (data / "images").iterdir()
                 if p.name.startswith(TMP_PREFIX) or p.name == "orphan-planted.png"]

    url = server.url
    with httpx.Client(timeout=30) as client:
        listed = _all_album_ids(client, url)
        kept = {a: s for a, s in ledger.acked.items()
                if a not in ledger.deleted and a not in ledger.in_doubt_delete}
        lost = [a for a, s in kept.items() if a not in listed or not _present(client, url, a, s)]
        resurrected = [a for a in ledger.deleted if a in listed
                       or client.get(f"{url}/catalog/{a}").status_code != 404]
        in_doubt = {**ledger.in_doubt_add,
                    **{a: ledger.acked[a] for a in ledger.in_doubt_delete}}
        for album_id, seed in in_doubt.items():  # either whole or absent, never half
            assert (album_id in listed) == _present(client, url, album_id, seed), album_id
    server.stop()

    records = _records(data)
    files = {p.name for p in (data / "images").iterdir()}
    figures = {
        "kills": KILLS + 1 + startup_kills, "kills_during_startup": startup_kills,
        "restarts": server.starts - 1, "albums_acknowledged": len(ledger.acked),
        "deletes_acknowledged": len(ledger.deleted), "in_doubt": len(ledger.in_doubt_add)
        + len(ledger.in_doubt_delete), "albums_lost": len(lost),
        "deleted_resurrected": len(resurrected), "half_present": half_present_on_disk,
    }
    print("crasher figures:", json.dumps(figures))
    if out := os.environ.get("CRATEWATCH_RELIABILITY_OUT"):
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "crasher.json").write_text(json.dumps(figures, indent=2) + "\n")

    assert writer.error is None, repr(writer.error)
    assert ledger.acked and ledger.deleted, f"the writer never got through: {ledger}"
    assert lost == [] and resurrected == []
    assert half_present_on_disk == 0
    assert set(records.values()) == files, "record without image, or image without record"
    assert leftovers == []
    # Both search paths hold exactly the searchable albums (the local features of each).
    assert stats["local_covers"] == stats["searchable"], stats
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "logs").iterdir())
    assert "lost image" not in logs and "Traceback" not in logs
    assert "data dir reconciled" in logs  # the planted leftovers were reported and swept
