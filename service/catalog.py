"""Read a catalog directory (``albums.csv`` + images); bad rows are logged and skipped."""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from service.config import DEFAULT_MAX_IMAGE_PIXELS
from service.imaging import ImageRejected, open_image

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("album_id", "artist", "title", "image")
# Ids end up in file names and URLs: a conservative alphabet keeps both safe. The pattern text
# is also the OpenAPI pattern (ECMA: ``$`` is the end of input); Python must use fullmatch,
# because there ``$`` also matches before a trailing newline ("abc\n" was once enrolled).
ALBUM_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ALBUM_ID_RULE = f"album_id must match {ALBUM_ID_RE.pattern} and contain no '..'"


def valid_album_id(album_id: str) -> bool:
    """True for ids safe as a file name and a URL segment (no slashes, no ``..``)."""
    return ALBUM_ID_RE.fullmatch(album_id) is not None and ".." not in album_id


def check_album_id(album_id: str) -> str:
    """Pydantic validator form of :func:`valid_album_id` (path parameters)."""
    if not valid_album_id(album_id):
        raise ValueError(ALBUM_ID_RULE)
    return album_id


@dataclass
class Album:
    """One searchable album, from the catalog directory or enrolled over the API."""

    album_id: str
    artist: str
    title: str
    image_path: Path
    metadata: dict[str, str] = field(default_factory=dict)
    source: str = "catalog"  # "catalog" (read-only directory) or "enrolled" (data dir)
    # "ok" (searchable), "missing" or "unreadable": such an album stays visible and deletable
    # instead of becoming a ghost that blocks its id.
    image_status: str = "ok"
    sha256: str = ""  # of the image bytes, once known: names duplicates

    def public(self) -> dict[str, object]:
        return {
            "album_id": self.album_id,
            "artist": self.artist,
            "title": self.title,
            "metadata": self.metadata,
            "source": self.source,
            "image_status": self.image_status,
        }


@dataclass
class CatalogReport:
    albums: list[Album]
    skipped: list[tuple[int, str]]  # (line number, reason)


def load_catalog(directory: Path, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> CatalogReport:
    """Parse ``<directory>/albums.csv``; missing directory or CSV gives an empty catalog.

    An image is checked as an upload would be (accepted format, at most ``max_pixels``), so a
    row the service would refuse to decode is skipped here instead of failing the load.
    """
    csv_path = Path(directory) / "albums.csv"
    if not csv_path.exists():
        log.warning("no catalog at %s: starting with enrolled albums only", csv_path)
        return CatalogReport([], [])
    root = Path(directory).resolve()
    albums: list[Album] = []
    skipped: list[tuple[int, str]] = []
    seen: set[str] = set()
    with csv_path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            log.error("%s: missing required columns %s; catalog ignored", csv_path, missing)
            return CatalogReport([], [(1, f"missing columns {missing}")])
        for row in reader:
            # DictReader's line_num is the physical line just read: the row's own line.
            line = reader.line_num
            album, reason = _parse_row(row, root, seen, max_pixels)
            if album is None:
                log.warning("%s line %d skipped: %s", csv_path, line, reason)
                skipped.append((line, reason))
                continue
            seen.add(album.album_id)
            albums.append(album)
    log.info("catalog %s: %d albums, %d rows skipped", csv_path, len(albums), len(skipped))
    return CatalogReport(albums, skipped)


def _parse_row(row: dict[str, str | None], root: Path, seen: set[str], max_pixels: int
               ) -> tuple[Album | None, str]:
    values = {k: (v or "").strip() for k, v in row.items() if k is not None}
    album_id = values["album_id"]
    if not valid_album_id(album_id):
        return None, f"invalid album_id {album_id!r}"
    if album_id in seen:
        return None, f"duplicate album_id {album_id!r}"
    if not values["image"]:
        return None, "empty image path"
    path = (root / values["image"]).resolve()
    if not path.is_relative_to(root):
        return None, f"image path {values['image']!r} leaves the catalog directory"
    if not path.is_file():
        return None, f"image not found: {values['image']}"
    problem = _unreadable(path, max_pixels)
    if problem:
        return None, f"unreadable image {values['image']}: {problem}"
    metadata = {k: v for k, v in values.items() if k not in REQUIRED_COLUMNS}
    return Album(album_id, values["artist"], values["title"], path, metadata), ""


def _unreadable(path: Path, max_pixels: int) -> str:
    """Cheap header check so a broken, oversized or exotic file is reported here, with its line
    number (``open_image`` turns Pillow's DecompressionBombError, no OSError, into a refusal)."""
    try:
        with open_image(path, max_pixels) as img:
            img.verify()
    except ImageRejected as exc:
        return str(exc)
    except (OSError, SyntaxError, ValueError) as exc:
        return str(exc) or type(exc).__name__  # from verify(): a corrupt body
    return ""
