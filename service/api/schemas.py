"""Response models: they document the API in OpenAPI and let fuzzers check responses."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Match(BaseModel):
    rank: int
    album_id: str
    artist: str
    title: str
    score: float
    inliers: int = Field(description="RANSAC-homography inliers (0 when not verified)")
    metadata: dict[str, str]


class IdentifyResponse(BaseModel):
    identified: str | None = Field(
        description="album_id of the first match when it clears the acceptance rule, else null")
    confidence: float = Field(
        ge=0, le=1, description="measured precision of such answers (0 when null)")
    decided_by: str = Field(description='"embedding" (gate) or "verified" (local features)')
    matches: list[Match]
    view: str = Field("colour", description='"grey" when the crop had no colour and was ranked '
                      "against the catalog's grey views (RGB models, GREY_VIEWS), else \"colour\"")
    model_version: str
    timings_ms: dict[str, float]


class AlbumOut(BaseModel):
    album_id: str
    artist: str
    title: str
    metadata: dict[str, str]
    source: str
    image_status: str = Field(
        "ok", description="ok (searchable), missing or unreadable (delete and enrol again)")


class AlbumPage(BaseModel):
    total: int
    offset: int
    limit: int
    albums: list[AlbumOut]


class Created(BaseModel):
    album_id: str
    duplicate_of: str | None = Field(
        None, description="an album with the same image (same sha256); absent when none")


class ErrorOut(BaseModel):
    detail: str | list[dict[str, object]]
