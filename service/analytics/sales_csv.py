"""Parse a till export (CSV) into sale rows and per-line rejections; bad rows never stop the rest.

Header ``sold_at,album_id,quantity`` plus optional ``sale_id,store,price``; ``line`` numbers
count the header as line 1. Times without an offset are read in the shop's time zone.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

REQUIRED = ("sold_at", "album_id", "quantity")
OPTIONAL = ("sale_id", "store", "price")
MAX_TEXT = 200
MAX_QUANTITY = 1_000_000
# Times a shop can mean. Outside them, year 1 or 9999 with an offset parse but overflow later
# (window arithmetic, ``datetime.fromtimestamp`` in the hour report): refuse them at the door.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


class BadSalesFile(ValueError):
    """The file as a whole is unusable (encoding, header)."""


@dataclass(frozen=True)
class Sale:
    line: int
    sale_key: str  # dedupe key: the sale_id when given, else a hash of the whole row
    sale_id: str | None
    sold_at: float
    album_id: str
    quantity: int
    store: str | None
    price: float | None


@dataclass
class ParsedSales:
    sales: list[Sale]
    rejected: list[dict[str, int | str]]


def parse_time(value: str, zone: ZoneInfo, require_offset: bool = False) -> datetime:
    """ISO 8601 (``Z`` allowed); naive times are in ``zone`` unless an offset is required."""
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {text[:40]!r}") from None
    if moment.tzinfo is None:
        if require_offset:
            raise ValueError(f"time needs a UTC offset (e.g. +01:00 or Z): {text[:40]!r}")
        moment = moment.replace(tzinfo=zone)
    try:
        in_range = EARLIEST <= moment < LATEST
    except OverflowError:  # a UTC offset pushing year 1 or 9999 off the calendar
        in_range = False
    if not in_range:
        raise ValueError(f"time outside 1970-01-01..2100-01-01 UTC: {text[:40]!r}")
    return moment


def parse_sales(data: bytes, zone: ZoneInfo, known_album: Callable[[str], bool]) -> ParsedSales:
    """Every data line becomes a Sale or a rejection with its line number."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadSalesFile(f"the file is not UTF-8 text (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader, [])]
    except csv.Error as exc:
        raise BadSalesFile(f"unreadable header line: {exc}") from None
    _check_header(header)
    out = ParsedSales([], [])
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # One unreadable line (a field over csv's size limit, ...) is that line's fault:
            # the reader resumes at the next line, so the rest is still imported or rejected.
            out.rejected.append({"line": reader.line_num, "error": f"unreadable CSV: {exc}"})
            continue
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # blank line: nothing to import, nothing wrong
        try:
            out.sales.append(_parse_row(line, header, row, zone, known_album))
        except ValueError as exc:
            out.rejected.append({"line": line, "error": str(exc)})
    return out


def _check_header(header: list[str]) -> None:
    if not any(header):
        raise BadSalesFile("empty file: expected a header line " + ",".join(REQUIRED))
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise BadSalesFile(f"header misses {', '.join(missing)} (needs {','.join(REQUIRED)})")
    # An unknown column is most likely a typo (``saleid``) that would silently turn off
    # de-duplication by sale id: refuse the file instead of guessing.
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if unknown:
        raise BadSalesFile(f"unknown columns {', '.join(unknown)} (allowed: "
                           f"{','.join(REQUIRED + OPTIONAL)})")
    if len(set(header)) != len(header):
        raise BadSalesFile("a column appears twice in the header")


def _parse_row(line: int, header: list[str], row: list[str], zone: ZoneInfo,
               known_album: Callable[[str], bool]) -> Sale:
    if len(row) != len(header):
        raise ValueError(f"expected {len(header)} fields, found {len(row)}")
    values = {k: v.strip() for k, v in zip(header, row, strict=True)}
    sold_at = parse_time(values["sold_at"], zone).timestamp()
    album_id = values["album_id"]
    if not known_album(album_id):
        raise ValueError(f"unknown album_id {album_id[:130]!r}")
    quantity = _quantity(values["quantity"])
    sale_id = values.get("sale_id") or None
    store = values.get("store") or None
    for name, text in (("sale_id", sale_id), ("store", store)):
        if text is not None and len(text) > MAX_TEXT:
            raise ValueError(f"{name} longer than {MAX_TEXT} characters")
    price = _price(values.get("price") or "")
    if sale_id is not None:
        key = "id:" + sale_id
    else:
        content = json.dumps([sold_at, album_id, quantity, store, price])
        key = "row:" + hashlib.sha256(content.encode()).hexdigest()
    return Sale(line, key, sale_id, sold_at, album_id, quantity, store, price)


def _quantity(text: str) -> int:
    try:
        quantity = int(text)
    except ValueError:
        raise ValueError(f"quantity is not a whole number: {text[:40]!r}") from None
    if quantity == 0:
        raise ValueError("quantity is 0 (a sale is positive, a return negative)")
    if abs(quantity) > MAX_QUANTITY:
        raise ValueError(f"quantity beyond ±{MAX_QUANTITY}")
    return quantity


def _price(text: str) -> float | None:
    if not text:
        return None
    try:
        price = float(text)
    except ValueError:
        raise ValueError(f"price is not a number: {text[:40]!r}") from None
    if not math.isfinite(price):
        raise ValueError("price is not a finite number")
    return price
