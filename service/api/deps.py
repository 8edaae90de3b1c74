"""Typed FastAPI dependencies shared by the routers."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, Header, HTTPException, Request

from service.analytics.db import AnalyticsUnavailable
from service.analytics.store import AnalyticsStore
from service.config import Settings
from service.engine import Engine
from service.index import single_thread_faiss

ANALYTICS_DOWN = "analytics store unavailable; the server log has the details"


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    """The engine, once ready; 503 + Retry-After while the model and index load."""
    engine: Engine = request.app.state.engine
    if not engine.ready:
        detail = "model and index are loading" if engine.state == "loading" else "loading failed"
        raise HTTPException(503, detail=detail, headers={"Retry-After": "5"})
    return engine


def require_api_key(
    settings: Annotated[Settings, Depends(get_settings)],
    x_api_key: Annotated[str | None, Header(description="required when an API key is set")] = None,
) -> None:
    """Writes need ``X-API-Key`` when a key is configured; compared in constant time."""
    if settings.api_key is None:
        return
    expected = settings.api_key.get_secret_value().encode()
    given = (x_api_key or "").encode()
    if not hmac.compare_digest(given, expected):
        raise HTTPException(401, detail="missing or wrong X-API-Key",
                            headers={"WWW-Authenticate": "X-API-Key"})


async def get_analytics(request: Request) -> AnalyticsStore:
    """The analytics store, opened (and migrated) on first use; 503 while it is unreachable."""
    store: AnalyticsStore = request.app.state.analytics
    try:
        await anyio.to_thread.run_sync(store.open)
    except AnalyticsUnavailable:
        # The cause names paths or hosts: it is in the server log, not in a public answer.
        raise HTTPException(503, detail=ANALYTICS_DOWN, headers={"Retry-After": "5"}) from None
    return store


async def run_blocking(request: Request, func: Any, *args: Any) -> Any:
    """Run blocking work (decode, ONNX, FAISS, fsync) in the worker pool, off the event loop."""
    limiter = request.app.state.inference_limiter

    def call() -> Any:
        single_thread_faiss()
        return func(*args)

    return await anyio.to_thread.run_sync(call, limiter=limiter)


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
AnalyticsDep = Annotated[AnalyticsStore, Depends(get_analytics)]
WriteAccess = Depends(require_api_key)
# Sales and reports are business data: the same key guards reading them.
KeyAccess = Depends(require_api_key)
