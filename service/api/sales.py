"""POST /sales: import a till export (CSV); re-importing the same file changes nothing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Request, UploadFile

from service.analytics.sales_csv import BadSalesFile, parse_sales
from service.api.deps import AnalyticsDep, EngineDep, KeyAccess, SettingsDep, run_blocking
from service.api.schemas import ErrorOut
from service.api.schemas_analytics import SalesImported

router = APIRouter(tags=["analytics"])


@router.post("/sales", response_model=SalesImported, dependencies=[KeyAccess],
             responses={400: {"model": ErrorOut, "description": "malformed multipart body"},
                        401: {"model": ErrorOut}, 413: {"model": ErrorOut},
                        422: {"model": ErrorOut, "description": "not a usable sales CSV"},
                        503: {"model": ErrorOut}})
async def import_sales(
    request: Request,
    settings: SettingsDep,
    engine: EngineDep,
    analytics: AnalyticsDep,
    file: Annotated[UploadFile, File(description="CSV: sold_at,album_id,quantity"
                                                 "[,sale_id,store,price]")],
) -> SalesImported:
    """Import sales; bad rows are reported by line and never stop the others."""
    data = await file.read()
    try:
        parsed = await run_blocking(request, parse_sales, data, settings.zone,
                                    engine.albums.__contains__)
    except BadSalesFile as exc:
        raise HTTPException(422, detail=str(exc)) from None
    result = await run_blocking(request, analytics.import_sales, parsed.sales)
    metrics = request.app.state.metrics
    metrics.sales_imported.inc(result.imported)
    metrics.sales_rejected.inc(len(parsed.rejected))
    return SalesImported(imported=result.imported, duplicates=result.duplicates,
                         rejected=parsed.rejected)
