"""Map domain exceptions to JSON ``{"detail": ...}`` responses: 4xx for bad input, never 5xx."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from service.analytics.db import AnalyticsUnavailable
from service.engine import AlbumNotFound
from service.imaging import ImageRejected
from service.store import AlbumExists

log = logging.getLogger(__name__)


async def _image_rejected(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=422)


async def _album_exists(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"album {exc.args[0]!r} already exists"}, status_code=409)


async def _album_not_found(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"album {exc.args[0]!r} not found"}, status_code=404)


async def _analytics_down(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal error"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ImageRejected, _image_rejected)
    app.add_exception_handler(AlbumExists, _album_exists)
    app.add_exception_handler(AlbumNotFound, _album_not_found)
    app.add_exception_handler(AnalyticsUnavailable, _analytics_down)
    app.add_exception_handler(Exception, _unexpected)
