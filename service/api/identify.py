"""POST /identify: which album is in this crop?"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, Request, UploadFile

from service.api.deps import EngineDep, run_blocking
from service.api.schemas import ErrorOut, IdentifyResponse

router = APIRouter(tags=["identify"])

ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut, "description": "malformed multipart body"},
    413: {"model": ErrorOut, "description": "body over max_upload_bytes"},
    422: {"model": ErrorOut, "description": "not a usable image, or bad parameters"},
    503: {"model": ErrorOut, "description": "loading, or too many requests in flight"},
}


@router.post("/identify", response_model=IdentifyResponse, responses=ERRORS)
async def identify(
    request: Request,
    engine: EngineDep,
    image: Annotated[UploadFile, File(description="the crop: JPEG, PNG, WebP, ...")],
    k: Annotated[int, Query(ge=1, le=50, description="number of matches")] = 5,
) -> IdentifyResponse:
    """Identify the album in an image: best matches first, with scores and stage timings."""
    # FastAPI has read the whole body before this runs: only complete uploads take a slot.
    with request.app.state.admission.admit():
        data = await image.read()
        result = await run_blocking(request, engine.identify, data, k)
    request.app.state.metrics.identifications.inc()
    return IdentifyResponse.model_validate(result)
