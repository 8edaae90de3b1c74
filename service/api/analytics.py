"""GET /analytics/*: browses, sales and conversion per album, hour and camera."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from service.analytics import reports
from service.analytics.sales_csv import parse_time
from service.analytics.store import AnalyticsStore, BrowseStart, SaleFact
from service.api.deps import AnalyticsDep, KeyAccess, SettingsDep, run_blocking
from service.api.schemas import ErrorOut
from service.api.schemas_analytics import AlbumsReport, CamerasReport, HoursReport

router = APIRouter(prefix="/analytics", tags=["analytics"], dependencies=[KeyAccess],
                   responses={401: {"model": ErrorOut}, 422: {"model": ErrorOut},
                              503: {"model": ErrorOut}})
DEFAULT_WINDOW = timedelta(days=30)
TimeParam = Query(description="ISO 8601; without an offset, in the shop's time zone")


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime


def window(settings: SettingsDep, since: Annotated[str | None, TimeParam] = None,
           until: Annotated[str | None, TimeParam] = None) -> Window:
    """[since, until): default the last 30 days up to now."""
    try:
        end = parse_time(until, settings.zone) if until else datetime.now(settings.zone)
        start = parse_time(since, settings.zone) if since else end - DEFAULT_WINDOW
    except ValueError as exc:  # parse_time also refuses times off 1970..2100 (no overflow)
        raise HTTPException(422, detail=f"bad report window: {exc}") from None
    if start >= end:
        raise HTTPException(422, detail="since must be before until")
    return Window(start, end)


WindowDep = Annotated[Window, Depends(window)]
Facts = tuple[list[BrowseStart], list[SaleFact]]


async def _facts(request: Request, store: AnalyticsStore, w: Window, sales: bool = True
                 ) -> Facts:
    since, until = w.since.timestamp(), w.until.timestamp()
    browses = await run_blocking(request, store.browse_starts, since, until)
    sold = await run_blocking(request, store.sales_between, since, until) if sales else []
    return browses, sold


def _names(request: Request) -> reports.AlbumNames:
    albums = request.app.state.engine.albums

    def names(album_id: str) -> tuple[str | None, str | None]:
        album = albums.get(album_id)
        return (album.artist, album.title) if album else (None, None)

    return names


@router.get("/albums", response_model=AlbumsReport,
            responses={200: {"content": {"text/csv": {}}}})
async def albums(request: Request, analytics: AnalyticsDep, w: WindowDep,
                 format: Literal["json", "csv"] = "json") -> AlbumsReport | Response:
    """Browses, sales and conversion per album, most browsed first (``format=csv``: download)."""
    rows = reports.album_rows(*await _facts(request, analytics, w), _names(request))
    if format == "csv":
        name = f"cratewatch-albums-{w.since:%Y%m%d}-{w.until:%Y%m%d}.csv"
        return Response(reports.albums_csv(rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return AlbumsReport.model_validate(
        {"since": w.since.isoformat(), "until": w.until.isoformat(), "albums": rows})


@router.get("/unsold", response_model=AlbumsReport)
async def unsold(request: Request, analytics: AnalyticsDep, w: WindowDep,
                 min_browses: Annotated[int, Query(ge=1, le=1_000_000)] = 3) -> AlbumsReport:
    """Browsed often, bought rarely: at least ``min_browses`` browses, lowest conversion first."""
    rows = reports.album_rows(*await _facts(request, analytics, w), _names(request))
    return AlbumsReport.model_validate(
        {"since": w.since.isoformat(), "until": w.until.isoformat(),
         "albums": reports.unsold_rows(rows, min_browses)})


@router.get("/hours", response_model=HoursReport)
async def hours(request: Request, settings: SettingsDep, analytics: AnalyticsDep,
                w: WindowDep) -> HoursReport:
    """Browses and units sold per hour of day (0-23) in the shop's time zone."""
    browses, sold = await _facts(request, analytics, w)
    return HoursReport.model_validate(
        {"since": w.since.isoformat(), "until": w.until.isoformat(),
         "timezone": settings.timezone, "hours": reports.hour_rows(browses, sold, settings.zone)})


@router.get("/cameras", response_model=CamerasReport)
async def cameras(request: Request, analytics: AnalyticsDep, w: WindowDep) -> CamerasReport:
    """Browses per camera, most first."""
    browses, _ = await _facts(request, analytics, w, sales=False)
    return CamerasReport.model_validate(
        {"since": w.since.isoformat(), "until": w.until.isoformat(),
         "cameras": reports.camera_rows(browses)})
