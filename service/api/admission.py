"""Admission to the inference queue: bounded in-flight ``/identify`` work, 503 beyond it.

A request is counted only once its body is in (the route runs after FastAPI has parsed the
form), so clients still uploading never hold a slot: 32 slow uploaders cannot lock fast clients
out. Slow bodies are bounded separately by ``REQUEST_TIMEOUT_S`` (408) and
``MAX_UPLOAD_BYTES`` (413).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException

from service.metrics import Metrics


class Admission:
    """Counts admitted requests; only touched on the event loop, so it needs no lock."""

    def __init__(self, metrics: Metrics, limit: int) -> None:
        self.metrics, self.limit = metrics, limit
        self.inflight = 0

    @contextmanager
    def admit(self) -> Iterator[None]:
        """Hold a slot for the block, or raise 503 + ``Retry-After`` at once when all are taken."""
        if self.inflight >= self.limit:
            self.metrics.shed.inc()
            raise HTTPException(503, "too many identify requests in flight; retry shortly",
                                headers={"Retry-After": "1"})
        self.inflight += 1
        self.metrics.inflight.set(self.inflight)
        try:
            yield
        finally:
            self.inflight -= 1
            self.metrics.inflight.set(self.inflight)
