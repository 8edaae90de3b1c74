"""POST /identify: which album is in this crop? With ``camera``, also record a sighting.

Two ways to send the crop, one handler: the multipart form field ``image`` (the documented
contract) or the image itself as the request body (``Content-Type: image/*`` or
``application/octet-stream``, parameters in the query string). The raw body skips the form
parser and the client's multipart encoding: a camera client posting one crop needs neither.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, HTTPException, Query, Request, UploadFile
from fastapi.routing import APIRoute
from starlette.responses import Response

from service.analytics.sales_csv import parse_time
from service.api.deps import EngineDep, SettingsDep, get_analytics, require_api_key, run_blocking
from service.api.schemas import ErrorOut, IdentifyResponse
from service.config import Settings
from service.engine import Engine

CAMERA_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
RAW_TYPES = ("image/", "application/octet-stream")
ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut, "description": "malformed multipart body"},
    401: {"model": ErrorOut, "description": "camera given without the API key (when one is set)"},
    413: {"model": ErrorOut, "description": "body over max_upload_bytes"},
    422: {"model": ErrorOut, "description": "not a usable image, or bad parameters"},
    503: {"model": ErrorOut, "description": "loading, too many requests, or analytics down"},
}
# The raw body, documented next to the multipart form that FastAPI derives from the signature.
_BINARY = {"schema": {"type": "string", "format": "binary"}}
RAW_BODY_DOC = {"requestBody": {"content": {
    "image/jpeg": _BINARY, "image/png": _BINARY, "image/webp": _BINARY,
    "application/octet-stream": _BINARY}}}
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def is_raw(content_type: str | None) -> bool:
    """Whether a request's body is the image itself rather than a form."""
    return (content_type or "").strip().lower().startswith(RAW_TYPES)


async def identify(
    request: Request,
    settings: SettingsDep,
    engine: EngineDep,
    image: Annotated[UploadFile, File(description="the crop: JPEG, PNG, WebP, ...")],
    k: Annotated[int, Query(ge=1, le=50, description="number of matches")] = 5,
    camera: Annotated[str | None, Form(
        description="camera id (1-64 of A-Z a-z 0-9 . _ -): record a sighting")] = None,
    captured_at: Annotated[str | None, Form(
        description="ISO 8601 with offset; default now")] = None,
    x_api_key: Annotated[str | None, Header(
        description="required with camera when an API key is set")] = None,
) -> Response:
    """Identify the album in an image: best matches first, with scores and stage timings.

    The crop is the multipart field ``image``, or the whole request body when its
    ``Content-Type`` is ``image/*`` or ``application/octet-stream`` (then ``camera`` and
    ``captured_at`` are query parameters)."""
    # FastAPI has read the whole body before this runs: only complete uploads take a slot.
    return await _answer(request, settings, engine, image.read, k, camera, captured_at,
                         x_api_key)


async def identify_raw(
    request: Request,
    settings: SettingsDep,
    engine: EngineDep,
    k: Annotated[int, Query(ge=1, le=50)] = 5,
    camera: Annotated[str | None, Query()] = None,
    captured_at: Annotated[str | None, Query()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Response:
    """The raw-body form of ``identify`` (dispatched by ``ImageBodyRoute``)."""
    return await _answer(request, settings, engine, request.body, k, camera, captured_at,
                         x_api_key)


async def _answer(request: Request, settings: Settings, engine: Engine,
                  read: Callable[[], Coroutine[Any, Any, bytes]], k: int, camera: str | None,
                  captured_at: str | None, x_api_key: str | None) -> Response:
    if camera is not None:
        require_api_key(settings, x_api_key)  # a sighting is business data
    when = _sighting_time(camera, captured_at, settings)
    if camera is not None:
        analytics = await get_analytics(request)  # 503 before the work, not after
    data = await read()  # the whole body, before a slot is taken
    with request.app.state.admission.admit():
        result: dict[str, Any] = await run_blocking(request, engine.identify, data, k)
    request.app.state.metrics.identifications.inc()
    album_id = result.get("identified")
    if camera is not None and album_id:
        confidence = float(result.get("confidence") or 0.0)
        new_browse = await run_blocking(request, analytics.add_sighting, album_id, camera,
                                        when.timestamp(), confidence)
        request.app.state.metrics.sightings.inc()
        if new_browse:
            request.app.state.metrics.browses.inc()
    # Validated once and serialised by pydantic-core; returning the model would make FastAPI
    # dump, validate and encode it again (response_model still documents it).
    body = IdentifyResponse.model_validate(result).model_dump_json()
    return Response(body, media_type="application/json")


class ImageBodyRoute(APIRoute):
    """A route that hands raw-image bodies to ``identify_raw`` and forms to its own endpoint.

    One path, one route template for metrics, one OpenAPI operation (the form, plus the raw
    content types from ``RAW_BODY_DOC``); both handlers validate parameters and answer errors
    the FastAPI way."""

    def get_route_handler(self) -> Handler:
        form: Handler = super().get_route_handler()
        raw: Handler = APIRoute(
            self.path, identify_raw, methods=["POST"], response_model=None,
            dependency_overrides_provider=self.dependency_overrides_provider,
        ).get_route_handler()

        async def handler(request: Request) -> Response:
            return await (raw if is_raw(request.headers.get("content-type")) else form)(request)

        return handler


router = APIRouter(tags=["identify"], route_class=ImageBodyRoute)
router.add_api_route("/identify", identify, methods=["POST"], response_model=IdentifyResponse,
                     responses=ERRORS, openapi_extra=RAW_BODY_DOC)


def _sighting_time(camera: str | None, captured_at: str | None, settings: Settings
                   ) -> datetime:
    if camera is not None and not CAMERA_RE.fullmatch(camera):
        raise HTTPException(422, detail="camera must be 1-64 characters of A-Z a-z 0-9 . _ -")
    if captured_at is None:
        return datetime.now(settings.zone)
    try:
        when = parse_time(captured_at, settings.zone, require_offset=True)
    except ValueError as exc:
        raise HTTPException(422, detail=f"captured_at: {exc}") from None
    days = settings.sightings_retention_days
    # Acknowledging a sighting that the next purge deletes would break "an acknowledged write
    # is never lost": refuse it instead (without camera nothing is stored, nothing to refuse).
    if camera is not None and days > 0 and when < datetime.now(UTC) - timedelta(days=days):
        raise HTTPException(422, detail=f"captured_at: older than the {days}-day retention "
                                        "period (SIGHTINGS_RETENTION_DAYS); it would be deleted")
    return when
