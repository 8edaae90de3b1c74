"""Small JPEG thumbnails of cover images for the staff page (cached by path, mtime and size)."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

from PIL import ImageOps

from service.imaging import open_image


def thumbnail_jpeg(path: Path, size: int, max_pixels: int) -> bytes:
    """The cover fitted into ``size`` x ``size``, as JPEG. Raises ImageRejected for a format
    or a size an upload would be refused for (a cover can change on disk after it was checked),
    OSError if the file is gone or its data is corrupt."""
    return _cached(str(path), path.stat().st_mtime_ns, size, max_pixels)


@lru_cache(maxsize=2048)
def _cached(path: str, mtime_ns: int, size: int, max_pixels: int) -> bytes:
    with open_image(path, max_pixels) as src:
        src.draft("RGB", (size * 2, size * 2))  # JPEG: decode at a reduced scale, cheaply
        img = ImageOps.exif_transpose(src).convert("RGB")
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=82)
    return buf.getvalue()
