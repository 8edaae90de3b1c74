"""Response models: they document the API in OpenAPI and let fuzzers check responses."""

from __future__ import annotations

from pydantic import BaseModel


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


class AlbumPage(BaseModel):
    total: int
    offset: int
    limit: int
    albums: list[AlbumOut]


class Created(BaseModel):
    album_id: str


class ErrorOut(BaseModel):
    detail: str | list[dict[str, object]]
