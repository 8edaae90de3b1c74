"""Issue 11 defect 11: request metrics are labelled with the route template that served them.

``POST /catalog/add`` is its own route (not the partial match ``/catalog/{album_id}``); the docs
routes are routes; a path nothing serves is "unmatched" (bounded label cardinality).
"""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from service.testing.images import new_cover_png


def _count(text: str, endpoint: str, method: str, status: str) -> float:
    labels = f'endpoint="{re.escape(endpoint)}",method="{method}",status="{status}"'
    pattern = r"^cratewatch_requests_total\{" + labels + r"\} (\S+)$"
    found = re.findall(pattern, text, flags=re.M)
    return float(found[0]) if found else 0.0


def test_route_templates_label_requests(client: TestClient) -> None:
    r = client.post("/catalog/add", data={"artist": "A", "title": "T", "album_id": "m-1"},
                    files={"image": ("c.png", new_cover_png(31), "image/png")})
    assert r.status_code == 201
    assert client.get("/catalog/m-1").status_code == 200
    assert client.delete("/catalog/m-1").status_code == 204
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/no/such/path").status_code == 404
    text = client.get("/metrics").text
    assert _count(text, "/catalog/add", "POST", "201") == 1, text
    assert _count(text, "/catalog/{album_id}", "POST", "201") == 0
    assert _count(text, "/catalog/{album_id}", "GET", "200") == 1
    assert _count(text, "/catalog/{album_id}", "DELETE", "204") == 1
    assert _count(text, "/docs", "GET", "200") == 1
    assert _count(text, "/openapi.json", "GET", "200") == 1
    assert _count(text, "unmatched", "GET", "404") == 1
    assert 'endpoint="/no/such/path"' not in text
    assert re.search(r'cratewatch_request_duration_seconds_count\{endpoint="/catalog/add"\} 1',
                     text)
