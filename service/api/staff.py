"""The staff web page at ``/`` and its static files: nothing is loaded from the internet."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent.parent / "static"
# Only this origin: the page works on an offline shop PC and cannot leak data elsewhere.
CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")

router = APIRouter(tags=["page"])


@router.get("/", response_class=FileResponse, include_in_schema=False)
async def staff_page() -> FileResponse:
    """The staff page: identify, catalog, analytics."""
    return FileResponse(STATIC / "index.html", media_type="text/html",
                        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"})


def mount_static(app: FastAPI) -> None:
    """Serve ``service/static`` at ``/static``."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
