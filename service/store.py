"""Enrolled albums under ``<data>/``: SQLite (WAL, synchronous=FULL) plus image files.

Ordering is what makes a ``kill -9`` safe: an image is written to a temp file, fsynced, renamed
and its directory fsynced *before* the record commits, so a committed record always has its
image. A delete removes the record first, then the file. Startup sweeps what a kill left behind.

This store holds the only copy of every upload, so nothing here ever deletes an image it cannot
account for: an image without a record (a kill between rename and commit, or a lost or empty
``albums.sqlite3``) is moved to ``quarantine/<UTC time>/`` and logged, never unlinked; a record
whose image is gone is kept, and shown as such, until the client deletes it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from service.catalog import Album, valid_album_id

log = logging.getLogger(__name__)

TMP_PREFIX = ".tmp-"
QUARANTINE = "quarantine"
SCHEMA = """
CREATE TABLE IF NOT EXISTS albums (
    album_id TEXT PRIMARY KEY,
    artist TEXT NOT NULL,
    title TEXT NOT NULL,
    metadata TEXT NOT NULL,
    image TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deleted (album_id TEXT PRIMARY KEY);
"""


class AlbumExists(Exception):
    """The album id is already taken."""


@dataclass
class ReconcileReport:
    temp_removed: int = 0
    images_quarantined: int = 0
    records_without_image: int = 0
    quarantine_dir: str = ""


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AlbumStore:
    """Durable store of enrolled albums and of deletions of read-only catalog albums."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir)
        self.images = self.root / "images"
        self.images.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.root / "albums.sqlite3", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before it returns, so the 201 that follows is honest.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._reconcile()  # logs what it did; nothing reads the report later

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _reconcile(self) -> ReconcileReport:
        """Remove temp files, quarantine images without a record, report records without image.

        A temp file never backed a 201 (the reply follows the rename and the commit), so it goes.
        """
        report = ReconcileReport()
        with self._lock:
            known = {row[0] for row in self._db.execute("SELECT image FROM albums")}
            orphans: list[Path] = []
            for path in self.images.iterdir():
                if path.name.startswith(TMP_PREFIX):
                    path.unlink(missing_ok=True)
                    report.temp_removed += 1
                elif path.name not in known:
                    orphans.append(path)
            if orphans:
                report.quarantine_dir = str(self._quarantine(orphans))
                report.images_quarantined = len(orphans)
            for album_id, image in self._db.execute("SELECT album_id, image FROM albums"):
                if not (self.images / image).is_file():
                    log.error("enrolled album %s has no image file %s: kept and shown with "
                              "image_status 'missing'; delete it and enrol it again", album_id,
                              image)
                    report.records_without_image += 1
        if report.temp_removed or report.images_quarantined or report.records_without_image:
            log.warning("data dir reconciled: %s", report)
        fsync_dir(self.images)
        return report

    def _quarantine(self, orphans: list[Path]) -> Path:
        """Move images without a record aside: they may be the only copy of an upload."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = self.root / QUARANTINE / stamp
        target.mkdir(parents=True, exist_ok=True)
        for path in orphans:
            os.replace(path, target / path.name)
        fsync_dir(target)
        fsync_dir(target.parent)
        log.error(
            "%d enrolled image(s) had no album record (a kill between write and commit, a "
            "delete whose file removal failed, or a missing or empty albums.sqlite3): moved "
            "to %s, NOT deleted. Each file is named "
            "<album_id>.<ext>: if that album was deleted, remove the file; otherwise re-enrol "
            "it with POST /catalog/add (see README, 'Your own catalog'), then remove the file.",
            len(orphans), target)
        return target

    def albums(self) -> list[Album]:
        with self._lock:
            rows = list(
                self._db.execute(
                    "SELECT album_id, artist, title, metadata, image FROM albums ORDER BY created"
                )
            )
        return [
            Album(aid, artist, title, self.images / image, json.loads(meta), "enrolled")
            for aid, artist, title, meta, image in rows
        ]

    def deleted_ids(self) -> set[str]:
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT album_id FROM deleted")}

    def add(
        self, album_id: str, artist: str, title: str, metadata: dict[str, str], image: bytes,
        suffix: str,
    ) -> Album:
        """Write the image durably, then commit the record; raises AlbumExists."""
        if not valid_album_id(album_id) or not suffix.isalnum():
            raise ValueError("invalid album id or image suffix")
        name = f"{album_id}.{suffix}"
        with self._lock:
            if self._db.execute("SELECT 1 FROM albums WHERE album_id=?", (album_id,)).fetchone():
                raise AlbumExists(album_id)
            final = self.images / name
            self._write_file(final, image)
            try:
                with self._db:
                    self._db.execute(
                        "INSERT INTO albums (album_id, artist, title, metadata, image, created) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (album_id, artist, title, json.dumps(metadata), name, time.time()),
                    )
                    self._db.execute("DELETE FROM deleted WHERE album_id=?", (album_id,))
            except BaseException:
                with contextlib.suppress(OSError):  # no record: the image must not stay
                    final.unlink(missing_ok=True)
                raise
        return Album(album_id, artist, title, self.images / name, metadata, "enrolled")

    def _write_file(self, final: Path, data: bytes) -> None:
        """Temp file, fsync, rename, fsync the directory; on any failure nothing stays behind
        (a full disk must not leave ``.tmp-*`` files until the next restart)."""
        tmp = final.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex}")
        try:
            with tmp.open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
            fsync_dir(final.parent)
        except BaseException:
            for leftover in (tmp, final):
                with contextlib.suppress(OSError):  # keep the original error, not a cleanup one
                    leftover.unlink(missing_ok=True)
            raise

    def delete(self, album_id: str) -> None:
        """Drop any enrolled record and hide the id from the catalog, in one transaction.

        Record first, then the file: a kill in between leaves an orphan image that startup
        quarantines. The commit is the deletion: a failure removing the file after it (EACCES,
        EIO) is logged, not raised, since the caller must not report a durable delete as failed.
        """
        with self._lock:
            row = self._db.execute(
                "SELECT image FROM albums WHERE album_id=?", (album_id,)
            ).fetchone()
            with self._db:
                self._db.execute("DELETE FROM albums WHERE album_id=?", (album_id,))
                # The tombstone hides a read-only catalog row of the same id after a restart.
                self._db.execute(
                    "INSERT OR IGNORE INTO deleted (album_id) VALUES (?)", (album_id,)
                )
            if row is not None:
                self._remove_image(album_id, self.images / row[0])

    def _remove_image(self, album_id: str, path: Path) -> None:
        """Best effort after the commit: what stays is quarantined by the next startup."""
        try:
            path.unlink(missing_ok=True)
            fsync_dir(self.images)
        except OSError as exc:
            log.error("album %s deleted (committed), but removing its image %s failed: %s; "
                      "a leftover file is moved to %s/ at the next startup", album_id, path, exc,
                      self.root / QUARANTINE)
