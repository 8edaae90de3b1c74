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
from pydantic import SecretStr
from schemathesis.core.failures import FailureGroup
from schemathesis.openapi.checks import AllowHeaderMismatch
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance

from service.app import create_app
from service.config import Settings

MAX_EXAMPLES = 50  # per operation, fuzzing phase; the examples/coverage phases add a few more
TALLY: Counter[str] = Counter()


def _wait_ready(client: asgi.ASGIClient, timeout_s: float = 120.0) -> None:
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
               "allow_header_mismatch_405": TALLY["allow_header_mismatch"],
               "by_status": {k[7:]: v for k, v in sorted(TALLY.items())
                             if k.startswith("status ")}}
    print("fuzz figures:", json.dumps(figures))
    if out := os.environ.get("CRATEWATCH_RELIABILITY_OUT"):
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "fuzz.json").write_text(json.dumps(figures, indent=2) + "\n")


@pytest.fixture(params=["open", "keyed"])
def fuzz_client(request: pytest.FixtureRequest, tiny_model: Path, catalog_dir: Path,
                tmp_path: Path) -> Iterator[asgi.ASGIClient]:
    """A fresh app per operation, through its lifespan (the plugin ends it after each test);
    once with open writes, once with an API key (so writes also meet the 401 path)."""
    key = SecretStr("fuzz-key-1234") if request.param == "keyed" else None
    app = create_app(Settings(catalog=catalog_dir, data=tmp_path / "data", model=tiny_model,
                              threads=1, embed_batch_size=8, api_key=key))
    with asgi.get_client(app) as client:  # type: ignore[arg-type]  # starts the lifespan
        _wait_ready(client)
        yield client


# The schema the app publishes; building the app does not load anything until its lifespan.
schema = schemathesis.openapi.from_dict(
    create_app(Settings(model=Path("unused.onnx"), data=Path("unused"))).openapi())


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_and_never_5xx(case: schemathesis.Case, fuzz_client: asgi.ASGIClient,
                                    fuzz_tally: Counter[str]) -> None:
    response = case.call(base_url=fuzz_client.base_url, session=fuzz_client)
    fuzz_tally["requests"] += 1
    fuzz_tally[f"op {case.operation.label}"] += 1
    fuzz_tally[f"status {response.status_code}"] += 1
    fuzz_tally["5xx"] += response.status_code >= 500
    assert response.status_code < 500, (case.operation.label, response.text[:500])
    # positive_data_acceptance expects 2xx for any schema-valid body, but no schema can say "a
    # decodable image": an empty or random file is schema-valid and rightly gets a documented 422.
    try:
        case.validate_response(response, excluded_checks=[positive_data_acceptance])
    except FailureGroup as group:
        # Starlette answers a 405 with the first route that matched the path, so `Allow` on
        # /catalog/{album_id} names GET but not DELETE (a known Starlette limitation). Counted
        # and reported; every other failure fails the test.
        if not all(isinstance(f, AllowHeaderMismatch) for f in group.exceptions):
            raise
        fuzz_tally["allow_header_mismatch"] += 1
