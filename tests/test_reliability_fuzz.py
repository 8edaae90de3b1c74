"""schemathesis against the app's own OpenAPI schema, in-process through the real lifespan.

Every operation, a bounded number of generated examples each: no 5xx, and every response
conforms to the schema (status code, content type, headers, body). Counts go to stdout and,
when ``$CRATEWATCH_RELIABILITY_OUT`` is set, to ``fuzz.json`` there.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.python import asgi

from service.app import create_app
from service.config import Settings

MAX_EXAMPLES = 30  # per operation, fuzzing phase; the examples/coverage phases add a few more
TALLY: Counter[str] = Counter()


def _wait_ready(app: object, timeout_s: float = 120.0) -> None:
    client = asgi.get_client(app)  # type: ignore[arg-type]
    deadline = time.monotonic() + timeout_s
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "app never got ready"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def fuzz_tally() -> Iterator[Counter[str]]:
    yield TALLY
    figures = {"requests": TALLY["requests"], "status_5xx": TALLY["5xx"],
               "operations": len([k for k in TALLY if k.startswith("op ")]),
               "max_examples_per_operation": MAX_EXAMPLES,
               "by_status": {k[7:]: v for k, v in sorted(TALLY.items())
                             if k.startswith("status ")}}
    print("fuzz figures:", json.dumps(figures))
    if out := os.environ.get("CRATEWATCH_RELIABILITY_OUT"):
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "fuzz.json").write_text(json.dumps(figures, indent=2) + "\n")


@pytest.fixture
def api_schema(tiny_model: Path, catalog_dir: Path, tmp_path: Path) -> schemathesis.BaseSchema:
    """A fresh app per run: loading starts with the lifespan, and requests wait until ready."""
    app = create_app(Settings(catalog=catalog_dir, data=tmp_path / "data", model=tiny_model,
                              threads=1, embed_batch_size=8))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)  # starts the lifespan
    _wait_ready(app)
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_and_never_5xx(case: schemathesis.Case, fuzz_tally: Counter[str]) -> None:
    response = case.call()
    fuzz_tally["requests"] += 1
    fuzz_tally[f"op {case.operation.label}"] += 1
    fuzz_tally[f"status {response.status_code}"] += 1
    fuzz_tally["5xx"] += response.status_code >= 500
    assert response.status_code < 500, (case.operation.label, response.text[:500])
    case.validate_response(response)
