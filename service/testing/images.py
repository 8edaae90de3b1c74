"""Catalogs of procedural covers, and hostile image bytes crafted by hand."""

from __future__ import annotations

import csv
import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from service.demo import fake_album, make_cover


def make_catalog(directory: Path, n: int = 30, seed: int = 1, size: int = 128,
                 extra_rows: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    """Write ``albums.csv`` + ``images/`` with ``n`` covers (PNG, lossless); returns the rows."""
    rng = np.random.default_rng(seed)
    directory = Path(directory)
    (directory / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        artist, title = fake_album(rng)
        album_id = f"alb-{i:03d}"
        make_cover(rng, artist, title, size).save(directory / "images" / f"{album_id}.png")
        rows.append({"album_id": album_id, "artist": artist, "title": title,
                     "genre": "test", "image": f"images/{album_id}.png"})
    rows += extra_rows or []
    with (directory / "albums.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["album_id", "artist", "title", "genre", "image"])
        writer.writeheader()
        writer.writerows(rows)
    return rows


def new_cover_png(seed: int, size: int = 128) -> bytes:
    """A cover that is in no catalog (for enrolment tests)."""
    rng = np.random.default_rng(10_000 + seed)
    artist, title = fake_album(rng)
    return png_bytes(make_cover(rng, artist, title, size))


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_with_declared_size(width: int, height: int) -> bytes:
    """A valid-looking PNG header declaring ``width x height`` with a tiny IDAT (a pixel bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(
        b"IEND", b"")
