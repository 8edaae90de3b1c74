"""``cratewatch import-sales FILE``: the same import as ``POST /sales``, without a server."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from service.analytics.sales_csv import parse_sales
from service.analytics.store import AnalyticsStore
from service.catalog import load_catalog
from service.config import Settings


def known_album_ids(catalog: Path, data: Path, max_pixels: int) -> set[str]:
    """Catalog rows minus deletions, plus enrolled albums: what a server would load.

    The album store is read, never written (a running server may own it): read-only SQLite.
    """
    ids = {a.album_id for a in load_catalog(catalog, max_pixels).albums}
    db_path = data / "albums.sqlite3"
    if db_path.is_file():
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            ids -= {row[0] for row in db.execute("SELECT album_id FROM deleted")}
            ids |= {row[0] for row in db.execute("SELECT album_id FROM albums")}
        finally:
            db.close()
    return ids


def import_sales_file(settings: Settings, path: Path) -> dict[str, object]:
    """Parse and import ``path``; returns the body ``POST /sales`` would answer."""
    known = known_album_ids(settings.catalog, settings.data, settings.max_image_pixels)
    parsed = parse_sales(path.read_bytes(), settings.zone, known.__contains__)
    url = settings.database_url.get_secret_value() if settings.database_url else None
    store = AnalyticsStore(url, settings.data, settings.browse_gap_s,
                           settings.sightings_retention_days)
    try:
        result = store.import_sales(parsed.sales)
    finally:
        store.close()
    return {"imported": result.imported, "duplicates": result.duplicates,
            "rejected": parsed.rejected}
