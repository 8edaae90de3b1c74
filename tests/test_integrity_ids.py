"""Album id rules (issue 11, defect 5): one full-match rule, on enrolment and on every id route.

A ``$`` in the id pattern matched before a trailing newline, so ``"abc\\n"`` was enrolled and
could then be neither read nor deleted. Every rule is tried on ``POST /catalog/add`` and on each
route that takes an id; nothing invalid is ever stored.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from service.catalog import valid_album_id
from service.testing.images import new_cover_png

# (rule broken, id). A slash cannot be tried on a route: it splits the path into two segments.
INVALID = [
    ("trailing newline", "abc\n"),
    ("trailing carriage return", "abc\r"),
    ("leading newline", "\nabc"),
    ("newline inside", "ab\ncd"),
    ("first character not a letter or digit", "-abc"),
    ("leading dot", ".abc"),
    ("double dot", "a..b"),
    ("129 characters", "a" * 129),
    ("space", "a b"),
    ("non-ASCII letter", "caf\u00e9"),
    ("NUL byte", "a\x00b"),
    ("tab at the end", "abc\t"),
]
VALID = ["a", "Z", "0", "A.b_c-9", "x" * 128, "9.9"]


def _add(client: TestClient, album_id: str, seed: int) -> tuple[int, dict[str, object]]:
    r = client.post("/catalog/add", files={"image": ("c.png", new_cover_png(seed), "image/png")},
                    data={"artist": "a", "title": "t", "album_id": album_id})
    return r.status_code, r.json()


@pytest.mark.parametrize(("rule", "album_id"), INVALID, ids=[r for r, _ in INVALID])
def test_invalid_id_rejected_everywhere(module_client: TestClient, rule: str,
                                        album_id: str) -> None:
    assert not valid_album_id(album_id), rule
    before = module_client.get("/catalog?limit=1000").json()["total"]
    status, body = _add(module_client, album_id, 400)
    assert status == 422, (rule, body)
    assert module_client.get("/catalog?limit=1000").json()["total"] == before
    path = f"/catalog/{quote(album_id, safe='')}"
    for method, url in (("GET", path), ("GET", f"{path}/image"), ("GET", f"{path}/thumbnail"),
                        ("DELETE", path)):
        r = module_client.request(method, url)
        assert r.status_code == 422, (rule, method, url, r.text)
        assert "album_id" in r.text


def test_slash_in_id_rejected_on_enrolment(module_client: TestClient) -> None:
    status, body = _add(module_client, "a/b", 401)
    assert status == 422, body


@pytest.mark.parametrize("album_id", VALID)
def test_valid_id_round_trip(module_client: TestClient, album_id: str) -> None:
    status, body = _add(module_client, album_id, 402 + VALID.index(album_id))
    assert (status, body) == (201, {"album_id": album_id})
    got = module_client.get(f"/catalog/{album_id}")
    assert got.status_code == 200 and got.json()["album_id"] == album_id
    assert module_client.get(f"/catalog/{album_id}/image").status_code == 200
    assert module_client.get(f"/catalog/{album_id}/thumbnail").status_code == 200
    assert module_client.delete(f"/catalog/{album_id}").status_code == 204
    assert module_client.get(f"/catalog/{album_id}").status_code == 404
