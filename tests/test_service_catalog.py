"""Catalog directory parsing: good rows load, bad rows are reported by line number and skipped."""

from __future__ import annotations

from pathlib import Path

from service.catalog import load_catalog, valid_album_id
from service.testing.images import make_catalog


def test_bad_rows_are_skipped_with_line_numbers(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "broken.jpg").write_bytes(b"\xff\xd8\xff this is not a jpeg")
    bad = [
        {"album_id": "missing", "artist": "a", "title": "t", "genre": "", "image": "images/no.png"},
        {"album_id": "broken", "artist": "a", "title": "t", "genre": "", "image":
         "images/broken.jpg"},
        {"album_id": "alb-000", "artist": "dup", "title": "t", "genre": "", "image":
         "images/alb-001.png"},
        {"album_id": "../evil", "artist": "a", "title": "t", "genre": "", "image":
         "images/alb-001.png"},
        {"album_id": "escape", "artist": "a", "title": "t", "genre": "", "image": "../x.png"},
    ]
    rows = make_catalog(tmp_path, n=3, extra_rows=bad)
    report = load_catalog(tmp_path)
    assert [a.album_id for a in report.albums] == ["alb-000", "alb-001", "alb-002"]
    # header is line 1, three good rows are lines 2-4, the bad rows follow in order
    assert [line for line, _ in report.skipped] == [5, 6, 7, 8, 9]
    reasons = [reason for _, reason in report.skipped]
    assert "not found" in reasons[0]
    assert "unreadable" in reasons[1]
    assert "duplicate" in reasons[2]
    assert "invalid album_id" in reasons[3]
    assert "leaves the catalog" in reasons[4]
    assert report.albums[0].metadata == {"genre": "test"}
    assert report.albums[0].artist == rows[0]["artist"]


def test_missing_columns_or_directory_give_empty_catalog(tmp_path: Path) -> None:
    assert load_catalog(tmp_path / "nowhere").albums == []
    (tmp_path / "albums.csv").write_text("album_id,artist\nx,y\n")
    report = load_catalog(tmp_path)
    assert report.albums == [] and report.skipped


def test_album_id_validation() -> None:
    assert valid_album_id("demo-001") and valid_album_id("A.b_c-9")
    for bad in ["", "../x", "a/b", "a\\b", "..", ".hidden", "a..b", "x" * 200, "a b", "é"]:
        assert not valid_album_id(bad), bad
