"""Routes behind the staff page: the page itself, its static files, thumbnails, catalog search."""

from __future__ import annotations

import io
import re

from fastapi.testclient import TestClient
from PIL import Image


def test_page_and_static_files_are_self_contained(module_client: TestClient) -> None:
    page = module_client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assets = [a for a in re.findall(r'(?:src|href)="([^"]+)"', page.text)
              if a not in ("/docs", "/metrics")]
    assert sorted(assets) == ["/static/app.css", "/static/app.js"]  # nothing from elsewhere
    for asset in assets:
        assert module_client.get(asset).status_code == 200
    script = module_client.get("/static/app.js").text
    assert "http://" not in script.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in script
    assert "sessionStorage" in script and "X-API-Key" in script


def test_thumbnail_is_a_small_jpeg(module_client: TestClient) -> None:
    r = module_client.get("/catalog/alb-004/thumbnail", params={"size": 64})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(r.content)) as img:
        assert img.format == "JPEG" and max(img.size) == 64
    assert module_client.get("/catalog/alb-004/thumbnail", params={"size": 99}).status_code == 422
    assert module_client.get("/catalog/nope-1/thumbnail").status_code == 404


def test_catalog_search_filters_and_counts(module_client: TestClient,
                                          catalog_rows: list[dict[str, str]]) -> None:
    artist = catalog_rows[9]["artist"]
    body = module_client.get("/catalog", params={"q": artist.upper()}).json()
    expected = [r["album_id"] for r in catalog_rows if artist.casefold() in
                f"{r['album_id']}\n{r['artist']}\n{r['title']}".casefold()]
    assert [a["album_id"] for a in body["albums"]] == expected and body["total"] == len(expected)
    assert module_client.get("/catalog", params={"q": "alb-01"}).json()["total"] == 10
