"""``create_app(settings)``: the FastAPI app, its middleware and its lifespan."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

import service
from service.analytics.db import AnalyticsUnavailable
from service.analytics.store import AnalyticsStore
from service.api import analytics, catalog, health, identify, sales, staff
from service.api.errors import install_error_handlers
from service.api.middleware import BodyLimitMiddleware, LoadShedMiddleware, MetricsMiddleware
from service.config import Settings
from service.engine import Engine
from service.metrics import Metrics

log = logging.getLogger(__name__)
SHUTDOWN_WAIT_S = 30.0
RETENTION_EVERY_S = 3600.0


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the model and index load in a background thread once it starts."""
    settings = settings or Settings()
    metrics = Metrics()
    engine = Engine(settings, metrics)
    url = settings.database_url.get_secret_value() if settings.database_url else None
    store = AnalyticsStore(url, settings.data, settings.browse_gap_s,
                           settings.sightings_retention_days)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.inference_limiter = anyio.CapacityLimiter(settings.workers)
        # /healthz must answer while a large catalog embeds: load off the event loop.
        loader = threading.Thread(target=engine.load, name="cratewatch-load", daemon=True)
        loader.start()
        stop_purge = threading.Event()
        purger = threading.Thread(target=_retention_loop, args=(store, stop_purge),
                                  name="cratewatch-retention", daemon=True)
        purger.start()
        try:
            yield
        finally:
            stop_purge.set()
            engine.stop_loading()
            loader.join(timeout=SHUTDOWN_WAIT_S)
            purger.join(timeout=SHUTDOWN_WAIT_S)
            engine.close()
            store.close()

    app = FastAPI(
        title="cratewatch",
        version=service.__version__,
        description="Identify vinyl album covers in shop-floor CCTV crops.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.engine = engine
    app.state.analytics = store
    routers = (health.router, identify.router, catalog.router, sales.router, analytics.router,
               staff.router)
    for router in routers:
        app.include_router(router)
    staff.mount_static(app)
    install_error_handlers(app)
    routes = [r for router in routers for r in router.routes]
    # Added innermost first: metrics sees everything, including shed and oversize responses.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes,
                       timeout_s=settings.request_timeout_s)
    app.add_middleware(LoadShedMiddleware, metrics=metrics, limit=settings.max_inflight)
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=routes)
    return app


def _retention_loop(store: AnalyticsStore, stop: threading.Event) -> None:
    """Open the analytics store (migrations) at startup, then enforce retention hourly."""
    while True:
        try:
            store.open()
            store.purge_expired()
        except AnalyticsUnavailable:
            pass  # logged by the store; requests retry, and so does the next round
        if stop.wait(RETENTION_EVERY_S):
            return
