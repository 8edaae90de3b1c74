"""Security: the API key gate, keys kept out of logs and responses, ids that cannot escape the
data directory, and the open-writes warnings of ``cratewatch serve`` and ``make run``."""

from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from service.api import deps
from service.testing.images import new_cover_png
from service.testing.server import LiveServer

KEY = "s3cret-Key-0f-the-shop-7731"
ROOT = Path(__file__).resolve().parents[1]


def _add(url: str, album_id: str | None, headers: dict[str, str], seed: int = 1,
         filename: str = "c.png") -> httpx.Response:
    data = {"artist": "a", "title": "t"} | ({"album_id": album_id} if album_id else {})
    return httpx.post(f"{url}/catalog/add", data=data, headers=headers, timeout=30,
                      files={"image": (filename, new_cover_png(seed), "image/png")})


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_api_key_gate_and_no_leaks(tiny_model: Path, catalog_dir: Path, tmp_path: Path) -> None:
    server = LiveServer(catalog_dir, tmp_path / "data", tiny_model, tmp_path / "logs",
                        env={"CRATEWATCH_API_KEY": KEY, "CRATEWATCH_LOG_LEVEL": "DEBUG"})
    bodies: list[str] = []
    try:
        server.start()
        url = server.url
        wrong = [{}, {"X-API-Key": ""}, {"X-API-Key": KEY[:-1]}, {"X-API-Key": KEY + "x"},
                 {"X-API-Key": KEY.upper()}, {"Authorization": f"Bearer {KEY}"}]
        for i, headers in enumerate(wrong):
            r = _add(url, f"sec-{i}", headers)
            assert r.status_code == 401 and r.json()["detail"], headers
            bodies.append(r.text + str(r.headers))
            r = httpx.delete(f"{url}/catalog/alb-002", headers=headers, timeout=30)
            assert r.status_code == 401, headers
            bodies.append(r.text + str(r.headers))
        assert httpx.get(f"{url}/catalog/sec-0", timeout=30).status_code == 404
        assert httpx.get(f"{url}/catalog/alb-002", timeout=30).status_code == 200
        # Reads stay open; the right key writes.
        assert httpx.get(f"{url}/catalog", timeout=30).status_code == 200
        assert _add(url, "sec-ok", {"X-API-Key": KEY}).status_code == 201
        assert httpx.delete(f"{url}/catalog/sec-ok", headers={"X-API-Key": KEY},
                            timeout=30).status_code == 204
        for path in ("/readyz", "/metrics", "/openapi.json", "/docs", "/healthz"):
            bodies.append(httpx.get(f"{url}{path}", timeout=30).text)
    finally:
        server.stop()
    log = server.log()
    assert "DEBUG" in log or "debug" in log.lower()  # the most talkative level was on
    assert KEY not in log and KEY[:-1] not in log and KEY.upper() not in log
    assert not any(KEY[:8] in body for body in bodies)
    assert "is not set" not in log


def test_key_compare_is_constant_time() -> None:
    """A guard on the implementation: the comparison must stay ``hmac.compare_digest``."""
    source = inspect.getsource(deps.require_api_key)
    assert "compare_digest" in source and "==" not in source


BAD_IDS = ["../escape", "../../escape", "a/../../escape", "/etc/passwd", "a/b", "..", ".",
           "a\x00b", "\x00", "..\\escape", "a\\b", "escape\u2215slash", "%2e%2e%2fescape",
           "~root", "x" * 129, "", " ", "a b", "\n", "é"]


def test_album_ids_cannot_escape_the_data_dir(tiny_model: Path, catalog_dir: Path,
                                             tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("keep me")
    before_outside = _tree(tmp_path)
    server = LiveServer(catalog_dir, outside / "data", tiny_model, tmp_path / "logs")
    try:
        server.start()
        url = server.url
        for i, bad in enumerate(BAD_IDS):
            r = _add(url, bad, {}, seed=i) if bad else None
            if r is not None:
                assert r.status_code == 422, (bad, r.status_code, r.text)
        # A hostile file name is not a path: the stored file is named after the id.
        r = _add(url, "safe-1", {}, seed=50, filename="../../../outside/victim.txt")
        assert r.status_code == 201
        r = _add(url, None, {}, seed=51, filename="/etc/passwd\x00.png")
        assert r.status_code == 201
        for raw in ("..%2F..%2Fvictim.txt", "..%2fvictim.txt", "%2e%2e", "a%00b",
                    "..%5Cvictim.txt", "%2E%2E%2F%2E%2E%2Foutside%2Fvictim.txt"):
            for method in ("GET", "DELETE"):
                r = httpx.request(method, f"{url}/catalog/{raw}", timeout=30)
                assert 400 <= r.status_code < 500, (method, raw, r.status_code)
            r = httpx.get(f"{url}/catalog/{raw}/image", timeout=30)
            assert 400 <= r.status_code < 500 and b"keep me" not in r.content
    finally:
        server.stop()
    assert (outside / "victim.txt").read_text() == "keep me"
    created = _tree(tmp_path) - before_outside
    assert all(p.startswith(("outside/data", "logs")) for p in created), sorted(created)
    images = sorted(p.name for p in (outside / "data" / "images").iterdir())
    assert len(images) == 2 and "safe-1.png" in images, images


def test_serve_warns_when_writes_are_open(live_server: LiveServer) -> None:
    live_server.start()
    assert "CRATEWATCH_API_KEY is not set" in live_server.log()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("key", [None, KEY])
def test_make_run_warns_when_writes_are_open(tmp_path: Path, key: str | None) -> None:
    """`make run` itself, with the service swapped for a stub that prints its arguments."""
    stub = tmp_path / "bin" / "cratewatch"
    stub.parent.mkdir()
    stub.write_text('#!/bin/sh\necho "stub cratewatch $@"\n')
    stub.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRATEWATCH_", "MAKE"))}
    if key:
        env["CRATEWATCH_API_KEY"] = key
    # -o: never (re)install the venv from here; BIN: the stub instead of the real service.
    out = subprocess.run(["make", "-s", "-o", ".venv/.service-installed", "run",
                          f"BIN={stub.parent}"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "stub cratewatch serve" in out.stdout
    assert ("WARNING: CRATEWATCH_API_KEY is not set" in out.stdout) == (key is None)
    assert KEY not in out.stdout + out.stderr


SECRET_PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),  # GitHub tokens
]
# A literal API key assigned in config, compose, k8s or docs (tests use throwaway keys).
KEY_ASSIGNED = re.compile(r"CRATEWATCH_API_KEY\s*[=:]\s*['\"]?[A-Za-z0-9_\-]{8,}")


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="needs a git checkout")
def test_no_secrets_in_the_repo() -> None:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    files = [ROOT / name for name in listed.splitlines()]
    assert ".env" not in listed.splitlines(), ".env must never be committed"
    hits = []
    for path in files:
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        text = path.read_text(errors="ignore")
        patterns = SECRET_PATTERNS if path.is_relative_to(ROOT / "tests") else [
            *SECRET_PATTERNS, KEY_ASSIGNED]
        hits += [f"{path.relative_to(ROOT)}: {p.pattern}" for p in patterns if p.search(text)]
    assert hits == []
