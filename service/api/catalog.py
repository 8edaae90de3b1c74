"""Catalog routes: list, show, image, enrol and delete albums."""

from __future__ import annotations

import itertools
import re
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Path, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUpload

from service.api.deps import EngineDep, WriteAccess, run_blocking
from service.api.schemas import AlbumOut, AlbumPage, Created, ErrorOut
from service.catalog import ALBUM_ID_RE, valid_album_id
from service.engine import AlbumNotFound, Engine

router = APIRouter(prefix="/catalog", tags=["catalog"], responses={
    503: {"model": ErrorOut, "description": "model and index still loading"}})

AlbumId = Annotated[str, Path(pattern=ALBUM_ID_RE.pattern, description="album id")]
META_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
RESERVED = {"image", "artist", "title", "album_id"}
MAX_META_FIELDS = 32
MAX_META_CHARS = 1000
NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"model": ErrorOut}}
MEDIA = {".jpg": "image/jpeg", ".png": "image/png", ".webp": "image/webp", ".gif": "image/gif",
         ".bmp": "image/bmp", ".tiff": "image/tiff", ".jpeg": "image/jpeg"}


def _album(engine: Engine, album_id: str) -> AlbumOut:
    album = engine.albums.get(album_id)
    if album is None or ".." in album_id:
        raise AlbumNotFound(album_id)
    return AlbumOut.model_validate(album.public())


@router.get("", response_model=AlbumPage)
async def list_albums(
    engine: EngineDep,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlbumPage:
    """List searchable albums, paged, in load/enrolment order."""
    page = list(itertools.islice(list(engine.albums.values()), offset, offset + limit))
    return AlbumPage(total=len(engine.albums), offset=offset, limit=limit,
                     albums=[AlbumOut.model_validate(a.public()) for a in page])


@router.get("/{album_id}", response_model=AlbumOut, responses=NOT_FOUND)
async def get_album(engine: EngineDep, album_id: AlbumId) -> AlbumOut:
    """One album's record."""
    return _album(engine, album_id)


@router.get("/{album_id}/image", response_class=FileResponse, responses=NOT_FOUND)
async def get_album_image(engine: EngineDep, album_id: AlbumId) -> FileResponse:
    """The album's cover image as stored."""
    _album(engine, album_id)
    path = engine.albums[album_id].image_path
    if not path.is_file():
        raise AlbumNotFound(album_id)
    return FileResponse(path, media_type=MEDIA.get(path.suffix.lower(), "application/octet-stream"))


@router.post("/add", status_code=201, response_model=Created, dependencies=[WriteAccess],
             responses={400: {"model": ErrorOut, "description": "malformed multipart body"},
                        401: {"model": ErrorOut}, 409: {"model": ErrorOut},
                        413: {"model": ErrorOut}, 422: {"model": ErrorOut}})
async def add_album(
    request: Request,
    engine: EngineDep,
    image: Annotated[UploadFile, File(description="the cover image")],
    artist: Annotated[str, Form(min_length=1, max_length=500)],
    title: Annotated[str, Form(min_length=1, max_length=500)],
    album_id: Annotated[str | None, Form(description="optional; generated when absent")] = None,
) -> Created:
    """Enrol an album, durable before the 201; other form fields become its metadata."""
    if album_id is not None and not valid_album_id(album_id):
        raise HTTPException(422, detail="album_id must match "
                            f"{ALBUM_ID_RE.pattern} and contain no '..'")
    metadata = _metadata(await request.form())
    data = await image.read()
    album = await run_blocking(request, engine.add, data, album_id, artist, title, metadata)
    return Created(album_id=album.album_id)


def _metadata(form: FormData) -> dict[str, str]:
    items = [(k, v) for k, v in form.multi_items() if k not in RESERVED]
    if len(items) > MAX_META_FIELDS:
        raise HTTPException(422, detail=f"at most {MAX_META_FIELDS} metadata fields")
    out: dict[str, str] = {}
    for key, value in items:
        if isinstance(value, StarletteUpload) or not META_KEY_RE.match(key):
            raise HTTPException(422, detail=f"bad metadata field {key[:64]!r}")
        if len(value) > MAX_META_CHARS:  # refused, never silently cut
            raise HTTPException(422, detail=f"metadata field {key!r} is {len(value)} "
                                f"characters: at most {MAX_META_CHARS}")
        out[key] = value
    return out


@router.delete("/{album_id}", status_code=204, response_class=Response,
               dependencies=[WriteAccess], responses={**NOT_FOUND, 401: {"model": ErrorOut}})
async def delete_album(request: Request, engine: EngineDep, album_id: AlbumId) -> Response:
    """Delete an album: gone from the next search and after a restart."""
    await run_blocking(request, engine.delete, album_id)
    return Response(status_code=204)
