"""Response models: they document the API in OpenAPI and let fuzzers check responses."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Match(BaseModel):
    rank: int
    album_id: str
    artist: str
    title: str
    score: float
    metadata: dict[str, str]


class IdentifyResponse(BaseModel):
    matches: list[Match]
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
