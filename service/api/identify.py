"""POST /identify: which album is in this crop? With ``camera``, also record a sighting."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, File, Form, Header, HTTPException, Query, Request, UploadFile

from service.analytics.sales_csv import parse_time
from service.api.deps import EngineDep, SettingsDep, get_analytics, require_api_key, run_blocking
from service.api.schemas import ErrorOut, IdentifyResponse

router = APIRouter(tags=["identify"])

CAMERA_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut, "description": "malformed multipart body"},
    401: {"model": ErrorOut, "description": "camera given without the API key (when one is set)"},
    413: {"model": ErrorOut, "description": "body over max_upload_bytes"},
    422: {"model": ErrorOut, "description": "not a usable image, or bad parameters"},
    503: {"model": ErrorOut, "description": "loading, too many requests, or analytics down"},
}


@router.post("/identify", response_model=IdentifyResponse, responses=ERRORS)
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
) -> IdentifyResponse:
    """Identify the album in an image: best matches first, with scores and stage timings."""
    if camera is not None:
        require_api_key(settings, x_api_key)  # a sighting is business data
    when = _sighting_time(camera, captured_at, settings.zone)
    if camera is not None:
        analytics = await get_analytics(request)  # 503 before the work, not after
    # FastAPI has read the whole body before this runs: only complete uploads take a slot.
    with request.app.state.admission.admit():
        data = await image.read()
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
    return IdentifyResponse.model_validate(result)


def _sighting_time(camera: str | None, captured_at: str | None, zone: ZoneInfo) -> datetime:
    if camera is not None and not CAMERA_RE.fullmatch(camera):
        raise HTTPException(422, detail="camera must be 1-64 characters of A-Z a-z 0-9 . _ -")
    if captured_at is None:
        return datetime.now(zone)
    try:
        return parse_time(captured_at, zone, require_offset=True)
    except ValueError as exc:
        raise HTTPException(422, detail=f"captured_at: {exc}") from None
