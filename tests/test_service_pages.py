"""``/`` is a page, not a 404, and ``/docs`` works without internet: every asset it loads is
served by the service itself (issue 11, fresh machine)."""

from __future__ import annotations

import re
from urllib.parse import urlparse

from fastapi.testclient import TestClient


def test_root_page_links_docs(module_client: TestClient) -> None:
    r = module_client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'href="/docs"' in r.text


def _asset_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href|url)\s*[=:(]\s*['"]([^'"]+)['"]""", html)


def test_docs_reference_no_external_host_and_assets_are_served(module_client: TestClient
                                                                ) -> None:
    for page in ("/docs", "/redoc"):
        r = module_client.get(page)
        assert r.status_code == 200, page
        urls = _asset_urls(r.text)
        assert urls, r.text
        external = [u for u in urls if urlparse(u).netloc or u.startswith("//")]
        assert not external, (page, external)
        assert "http://" not in r.text and "https://" not in r.text.replace(
            "https://github.com", ""), page
        for url in urls:
            if url.endswith((".js", ".css", ".png")):
                asset = module_client.get(url)
                assert asset.status_code == 200 and len(asset.content) > 1000, url
    spec = module_client.get("/openapi.json").json()
    assert "/" not in spec["paths"] and not any("offline" in p for p in spec["paths"])
