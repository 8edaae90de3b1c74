"""``create_app(settings)``: the FastAPI app, its middleware and its lifespan."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

import service
from service.api import catalog, health, identify
from service.api.errors import install_error_handlers
from service.api.middleware import BodyLimitMiddleware, LoadShedMiddleware, MetricsMiddleware
from service.config import Settings
from service.engine import Engine
from service.metrics import Metrics

log = logging.getLogger(__name__)
SHUTDOWN_WAIT_S = 30.0


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the model and index load in a background thread once it starts."""
    settings = settings or Settings()
    metrics = Metrics()
    engine = Engine(settings, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.inference_limiter = anyio.CapacityLimiter(settings.workers)
        # /healthz must answer while a large catalog embeds: load off the event loop.
        loader = threading.Thread(target=engine.load, name="cratewatch-load", daemon=True)
        loader.start()
        try:
            yield
        finally:
            engine.stop_loading()
            loader.join(timeout=SHUTDOWN_WAIT_S)
            engine.close()

    app = FastAPI(
        title="cratewatch",
        version=service.__version__,
        description="Identify vinyl album covers in shop-floor CCTV crops.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.engine = engine
    app.include_router(health.router)
    app.include_router(identify.router)
    app.include_router(catalog.router)
    install_error_handlers(app)
    routes = [r for router in (health.router, identify.router, catalog.router)
              for r in router.routes]
    # Added innermost first: metrics sees everything, including shed and oversize responses.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes,
                       timeout_s=settings.request_timeout_s)
    app.add_middleware(LoadShedMiddleware, metrics=metrics, limit=settings.max_inflight)
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=routes)
    return app
