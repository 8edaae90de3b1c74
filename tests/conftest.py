"""Shared fixtures: a tiny real ONNX model, a generated catalog, the real app through its lifespan.

Reusable by every test module:
  tiny_model            session: Path to a tiny ONNX embedder (+ sidecar), version "tiny-test-1"
  catalog_rows/catalog_dir  session: 30 procedural covers (albums.csv + images/*.png), read-only
  make_settings(**kw)   Settings pointing at the above with a fresh data dir per test
  app_client(settings)  context manager: TestClient through the lifespan, waits until ready
  add_album / top_album  POST /catalog/add -> (status, body); POST /identify -> first album id
  client                a ready TestClient on the default settings
  live_server           LiveServer (``cratewatch serve`` subprocess) on the catalog, not started
  postgres_server       session: a real PostgreSQL in a temp dir (skips loudly when missing)
  analytics_db          parametrised: None (SQLite) and a fresh PostgreSQL database URL
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from service.testing.images import make_catalog
from service.testing.postgres import INSTALL_HINT, PostgresServer, find_bindir
from service.testing.server import LiveServer
from service.testing.system_deps import recorded_reason
from service.testing.tiny_model import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny.onnx")


@pytest.fixture(scope="session")
def catalog_dir_and_rows(tmp_path_factory: pytest.TempPathFactory
                         ) -> tuple[Path, list[dict[str, str]]]:
    directory = tmp_path_factory.mktemp("catalog")
    return directory, make_catalog(directory, n=30)


@pytest.fixture(scope="session")
def catalog_dir(catalog_dir_and_rows: tuple[Path, list[dict[str, str]]]) -> Path:
    return catalog_dir_and_rows[0]


@pytest.fixture(scope="session")
def catalog_rows(catalog_dir_and_rows: tuple[Path, list[dict[str, str]]]) -> list[dict[str, str]]:
    return catalog_dir_and_rows[1]


@pytest.fixture
def make_settings(tiny_model: Path, catalog_dir: Path, tmp_path: Path
                  ) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"catalog": catalog_dir, "data": tmp_path / "data",
                                  "model": tiny_model, "threads": 1, "embed_batch_size": 8}
        values.update(overrides)
        return Settings(**values)

    return make


def wait_ready(client: TestClient, timeout_s: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = client.get("/readyz")
        if r.status_code == 200:
            body: dict[str, Any] = r.json()
            return body
        if r.json().get("status") == "failed":
            raise RuntimeError(f"loading failed: {r.json()}")
        time.sleep(0.05)
    raise TimeoutError("app not ready")


@contextmanager
def app_client(settings: Settings) -> Iterator[TestClient]:
    """The real app through its lifespan (startup and shutdown), ready for requests."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        wait_ready(client)
        yield client


def add_album(client: TestClient, album_id: str, data: bytes) -> tuple[int, dict[str, Any]]:
    """Enrol ``data`` as a PNG upload under ``album_id``: (status code, JSON body)."""
    r = client.post("/catalog/add", files={"image": ("c.png", data, "image/png")},
                    data={"artist": "a", "title": "t", "album_id": album_id})
    body: dict[str, Any] = r.json()
    return r.status_code, body


def top_album(client: TestClient, data: bytes) -> str:
    """The first match's album id for ``data`` (the identify must answer 200)."""
    r = client.post("/identify", files={"image": ("q.png", data, "image/png")})
    assert r.status_code == 200, r.text
    return str(r.json()["matches"][0]["album_id"])


@pytest.fixture(scope="module")
def module_client(tiny_model: Path, catalog_dir: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One ready app shared by a module's tests, with a data dir of its own."""
    settings = Settings(catalog=catalog_dir, data=tmp_path_factory.mktemp("module-data"),
                        model=tiny_model, threads=1)
    with app_client(settings) as client:
        yield client


@pytest.fixture
def client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    with app_client(make_settings()) as c:
        yield c


@pytest.fixture
def live_server(tiny_model: Path, catalog_dir: Path, tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(catalog_dir, tmp_path / "data", tiny_model, tmp_path / "logs")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL for the session; skips loudly where it cannot be installed or run."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("SKIP PostgreSQL tests: PostgreSQL is not installed: "
                    + recorded_reason("postgresql", INSTALL_HINT))
    server = PostgresServer(bindir)
    try:
        server.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        server.stop()
        pytest.skip(f"SKIP PostgreSQL tests: cannot start a PostgreSQL server here: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def analytics_db(request: pytest.FixtureRequest) -> str | None:
    """Each analytics test runs twice: SQLite in its data dir (None) and a fresh PG database."""
    if request.param == "sqlite":
        return None
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database(f"t{uuid.uuid4().hex[:12]}")
