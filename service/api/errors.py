"""Map domain exceptions to JSON ``{"detail": ...}`` responses: 4xx for bad input, never 5xx."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from service.analytics.db import AnalyticsUnavailable
from service.engine import AlbumNotFound, DuplicateImage
from service.enrol import StorageBusy, StorageFull
from service.imaging import ImageRejected
from service.store import AlbumExists

log = logging.getLogger(__name__)
ECHO_CHARS = 80  # of each invalid input value, in a 422 body
MAX_ERRORS = 20


def _capped(error: dict[str, Any]) -> dict[str, Any]:
    """One validation error with its echoed input cut to a preview (two 1 MB fields gave a 2 MB
    422 body before)."""
    out: dict[str, Any] = {k: error[k] for k in ("type", "loc", "msg") if k in error}
    value = error.get("input")
    if isinstance(value, str | bytes):
        preview = value[:ECHO_CHARS]
        out["input"] = preview if isinstance(preview, str) else preview.decode(errors="replace")
        if len(value) > ECHO_CHARS:
            out["input_length"] = len(value)
    elif isinstance(value, int | float | bool) or value is None:
        out["input"] = value
    if isinstance(error.get("ctx"), dict):
        out["ctx"] = {k: v if isinstance(v, int | float | bool) else str(v)[:ECHO_CHARS]
                      for k, v in error["ctx"].items()}
    return out


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_capped(dict(e)) for e in exc.errors()[:MAX_ERRORS]]
    return JSONResponse({"detail": errors}, status_code=422)


async def _image_rejected(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=422)


async def _album_exists(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"album {exc.args[0]!r} already exists"}, status_code=409)


async def _album_not_found(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"album {exc.args[0]!r} not found"}, status_code=404)


async def _analytics_down(request: Request, exc: Exception) -> JSONResponse:
    log.error("analytics store failed on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse({"detail": "analytics store unavailable; the server log has the details"},
                        status_code=503, headers={"Retry-After": "5"})


async def _duplicate_image(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DuplicateImage)
    return JSONResponse({"detail": f"the same image is already enrolled as "
                         f"{exc.duplicate_of!r} (same sha256); nothing was stored",
                         "duplicate_of": exc.duplicate_of}, status_code=409)


async def _storage_full(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=507)


async def _storage_busy(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    # Starlette re-raises an unhandled error after this response and uvicorn then closes the
    # connection: say so, so that a keep-alive client does not reuse a dead socket.
    return JSONResponse({"detail": "internal error"}, status_code=500,
                        headers={"Connection": "close"})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(ImageRejected, _image_rejected)
    app.add_exception_handler(AlbumExists, _album_exists)
    app.add_exception_handler(AlbumNotFound, _album_not_found)
    app.add_exception_handler(AnalyticsUnavailable, _analytics_down)
    app.add_exception_handler(DuplicateImage, _duplicate_image)
    # Handled here (not as 500s), these keep the connection open.
    app.add_exception_handler(StorageFull, _storage_full)
    app.add_exception_handler(StorageBusy, _storage_busy)
    app.add_exception_handler(Exception, _unexpected)
