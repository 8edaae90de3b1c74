"""Reports from browse starts and sales: per album, browsed-not-bought, per hour, per camera."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from service.analytics.store import BrowseStart, SaleFact

AlbumNames = Callable[[str], tuple[str | None, str | None]]
CSV_COLUMNS = ("album_id", "artist", "title", "browses", "sales", "conversion")


def album_rows(browses: list[BrowseStart], sales: list[SaleFact], names: AlbumNames
               ) -> list[dict[str, object]]:
    """One row per album browsed or sold in the window, most browsed first."""
    browsed = Counter(b.album_id for b in browses)
    sold: Counter[str] = Counter()
    for sale in sales:
        sold[sale.album_id] += sale.quantity
    rows: list[dict[str, object]] = []
    for album_id in set(browsed) | set(sold):
        artist, title = names(album_id)
        n_browses, n_sales = browsed[album_id], sold[album_id]
        rows.append({"album_id": album_id, "artist": artist, "title": title,
                     "browses": n_browses, "sales": n_sales,
                     "conversion": n_sales / n_browses if n_browses else None})
    rows.sort(key=lambda r: (-_int(r["browses"]), -_int(r["sales"]), str(r["album_id"])))
    return rows


def unsold_rows(rows: list[dict[str, object]], min_browses: int) -> list[dict[str, object]]:
    """Albums browsed at least ``min_browses`` times, lowest conversion first."""
    kept = [r for r in rows if _int(r["browses"]) >= min_browses]
    return sorted(kept, key=lambda r: (float(r["conversion"] or 0.0),  # type: ignore[arg-type]
                                       -_int(r["browses"]), str(r["album_id"])))


def hour_rows(browses: list[BrowseStart], sales: list[SaleFact], zone: ZoneInfo
              ) -> list[dict[str, int]]:
    """24 rows: browses started and units sold per hour of the day in the shop's zone."""
    browsed = Counter(_hour(b.ts, zone) for b in browses)
    sold: Counter[int] = Counter()
    for sale in sales:
        sold[_hour(sale.sold_at, zone)] += sale.quantity
    return [{"hour": h, "browses": browsed[h], "sales": sold[h]} for h in range(24)]


def camera_rows(browses: list[BrowseStart]) -> list[dict[str, object]]:
    counts = Counter(b.camera for b in browses)
    return [{"camera": c, "browses": n}
            for c, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def albums_csv(rows: list[dict[str, object]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])
    return buf.getvalue()


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    # A cell starting with = + - @ is a formula to a spreadsheet: catalog text must not run.
    if isinstance(value, str) and text[:1] in ("=", "+", "-", "@"):
        return "'" + text
    return text


def _hour(ts: float, zone: ZoneInfo) -> int:
    return datetime.fromtimestamp(ts, zone).hour


def _int(value: object) -> int:
    return int(value) if isinstance(value, int) else 0
