"""HTML pages: ``/`` (a start page until the staff page replaces it) and offline API docs.

The docs are FastAPI's self-hosted recipe: Swagger UI and ReDoc load their scripts and styles
from ``/docs-assets``, served from the ``fastapi-offline`` package's copy, so ``/docs`` works in
a shop with no internet and leaks nothing to a CDN.
"""

from __future__ import annotations

import html
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

import service

ASSETS_URL = "/docs-assets"
ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"

router = APIRouter(include_in_schema=False)

START_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>cratewatch</title>
<style>body{{font-family:sans-serif;max-width:40em;margin:3em auto;line-height:1.5}}</style>
</head><body>
<h1>cratewatch {version}</h1>
<p>Identifies vinyl albums in shop-floor CCTV crops.</p>
<ul>
<li><a href="/docs">API documentation</a> (interactive; <a href="/redoc">ReDoc</a>)</li>
<li><a href="/readyz">Readiness</a> and <a href="/metrics">metrics</a></li>
<li><a href="/catalog">Catalog</a> (JSON)</li>
</ul>
</body></html>
"""


@router.get("/", response_class=HTMLResponse)
async def start_page() -> HTMLResponse:
    return HTMLResponse(START_PAGE.format(version=html.escape(service.__version__)))


@router.get("/docs", response_class=HTMLResponse)
async def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}", title="cratewatch API",
        swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        # The default validator badge would call validator.swagger.io from the browser.
        swagger_ui_parameters={"validatorUrl": None})


@router.get("/redoc", response_class=HTMLResponse)
async def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}", title="cratewatch API",
        redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png", with_google_fonts=False)


def install_pages(app: FastAPI) -> None:
    """Add the pages and the docs' static assets (the app is built with docs_url=None)."""
    app.include_router(router)
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
