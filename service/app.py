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
from service.api.admission import Admission
from service.api.docs import install_docs
from service.api.errors import install_error_handlers
from service.api.middleware import BodyLimitMiddleware, instrument
from service.config import Settings
from service.engine import Engine
from service.metrics import Metrics

log = logging.getLogger(__name__)
SHUTDOWN_WAIT_S = 30.0
RETENTION_EVERY_S = 3600.0


def _announce(engine: Engine, settings: Settings) -> None:
    """One line saying where the service is and what it serves, once ready (``make run``)."""
    host = "localhost" if settings.host in ("0.0.0.0", "::", "") else settings.host
    log.info("READY: http://%s:%d serving %d albums with model %s (API docs at /docs)",
             host, settings.port, len(engine.albums), engine.model_version)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the model and index load in a background thread once it starts."""
    settings = settings or Settings()
    metrics = Metrics()
    engine = Engine(settings, metrics)
    if settings.workers is not None:
        log.warning("CRATEWATCH_WORKERS is deprecated: it is the number of inference jobs run "
                    "at once, now CRATEWATCH_INFERENCE_CONCURRENCY (using %d)",
                    settings.inference_concurrency)
    url = settings.database_url.get_secret_value() if settings.database_url else None
    store = AnalyticsStore(url, settings.data, settings.browse_gap_s,
                           settings.sightings_retention_days)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.inference_limiter = anyio.CapacityLimiter(settings.inference_concurrency)
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
        docs_url=None,  # served offline by service.api.docs
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.engine = engine
    app.state.admission = Admission(metrics, settings.max_inflight)
    engine.on_ready = lambda: _announce(engine, settings)
    app.state.analytics = store
    routers = (health.router, identify.router, catalog.router, sales.router, analytics.router,
               staff.router)
    for router in routers:
        app.include_router(router)
    staff.mount_static(app)
    install_docs(app)
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes,
                       timeout_s=settings.request_timeout_s)
    instrument(app, metrics)  # last, so outermost: it sees 413 and 408 answers too
    return app


def _retention_loop(store: AnalyticsStore, stop: threading.Event,
                    every_s: float = RETENTION_EVERY_S) -> None:
    """Open the analytics store (migrations) at startup, then enforce retention hourly."""
    while True:
        try:
            store.open()
            store.purge_expired()
        except AnalyticsUnavailable:
            pass  # logged by the store; requests retry, and so does the next round
        except Exception:
            # A full disk or a damaged database must not end this thread: retention would
            # silently stop for the life of the process. Log it; the next round tries again.
            log.exception("retention round failed; retrying in %.0f s", every_s)
        if stop.wait(every_s):
            return
