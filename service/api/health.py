"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: 200 as soon as the process serves HTTP."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "model and index not loaded yet"}})
async def readyz(request: Request) -> JSONResponse:
    """Readiness: 503 until the model and index are loaded, then 200 with load statistics."""
    engine = request.app.state.engine
    body: dict[str, Any] = {"status": engine.state, **engine.stats}
    if engine.error:
        # The exception text names server paths: it is in the log, not in a public answer.
        body["error"] = "loading failed; the server log has the details"
    store = request.app.state.analytics
    # Analytics do not gate readiness: identification works without them.
    body["analytics"] = (store.dialect if store.dialect else
                         "unavailable" if store.error else "opening")
    if engine.ready:
        body["model_version"] = engine.model_version
        return JSONResponse(body)
    return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus metrics in text exposition format."""
    data = generate_latest(request.app.state.metrics.registry)
    return Response(data, media_type=CONTENT_TYPE_LATEST)
