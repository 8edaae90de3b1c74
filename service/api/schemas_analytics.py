"""Response models of the sales and analytics routes."""

from __future__ import annotations

from pydantic import BaseModel


class Rejected(BaseModel):
    line: int
    error: str


class SalesImported(BaseModel):
    imported: int
    duplicates: int
    rejected: list[Rejected]


class AlbumFigures(BaseModel):
    album_id: str
    artist: str | None
    title: str | None
    browses: int
    sales: int
    conversion: float | None


class AlbumsReport(BaseModel):
    since: str
    until: str
    albums: list[AlbumFigures]


class HourFigures(BaseModel):
    hour: int
    browses: int
    sales: int


class HoursReport(BaseModel):
    since: str
    until: str
    timezone: str
    hours: list[HourFigures]


class CameraFigures(BaseModel):
    camera: str
    browses: int


class CamerasReport(BaseModel):
    since: str
    until: str
    cameras: list[CameraFigures]
