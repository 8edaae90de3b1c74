"""Catalog routes: list, show, image, enrol and delete albums."""

from __future__ import annotations

import itertools
import re
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Path, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse
from pydantic import AfterValidator
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUpload

from service.api.deps import EngineDep, WriteAccess, run_blocking
from service.api.schemas import AlbumOut, AlbumPage, Created, ErrorOut
from service.catalog import ALBUM_ID_RE, ALBUM_ID_RULE, check_album_id, valid_album_id
from service.engine import AlbumNotFound, Engine
from service.imaging import ImageRejected
from service.thumbnails import thumbnail_jpeg

router = APIRouter(prefix="/catalog", tags=["catalog"], responses={
    503: {"model": ErrorOut, "description": "model and index still loading"}})

# The pattern documents the rule in OpenAPI; the validator applies all of it (full match, no
# ".."), so every id route answers 422 for an id that enrolment would refuse.
AlbumId = Annotated[str, Path(pattern=ALBUM_ID_RE.pattern, description="album id"),
                    AfterValidator(check_album_id)]
META_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
RESERVED = {"image", "artist", "title", "album_id"}
MAX_META_FIELDS = 32
MAX_META_CHARS = 1000
THUMB_SIZES = (64, 128, 256)


def _thumb_size(size: int) -> int:
    if size not in THUMB_SIZES:
        raise ValueError(f"size must be one of {THUMB_SIZES}")
    return size


ThumbSize = Annotated[int, AfterValidator(_thumb_size)]
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
    q: Annotated[str | None, Query(max_length=200, description="search id, artist, title")] = None,
) -> AlbumPage:
    """List albums, paged, in load/enrolment order (image_status says if searchable);
    ``q`` filters by id, artist or title (ignoring case)."""
    albums = list(engine.albums.values())
    if q:
        needle = q.casefold()
        albums = [a for a in albums
                  if needle in f"{a.album_id}\n{a.artist}\n{a.title}".casefold()]
    page = list(itertools.islice(albums, offset, offset + limit))
    return AlbumPage(total=len(albums), offset=offset, limit=limit,
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
        raise HTTPException(404, detail=f"album {album_id!r} has no image file (image_status "
                            "missing): delete it and enrol it again")
    return FileResponse(path, media_type=MEDIA.get(path.suffix.lower(), "application/octet-stream"))


@router.get("/{album_id}/thumbnail", response_class=Response,
            responses={**NOT_FOUND, 200: {"content": {"image/jpeg": {}}}})
async def get_album_thumbnail(
    request: Request, engine: EngineDep, album_id: AlbumId,
    size: Annotated[ThumbSize, Query(description="longest side in pixels")] = 128,
) -> Response:
    """The cover as a small JPEG (for result lists); 404 when its image cannot be shown."""
    _album(engine, album_id)
    path = engine.albums[album_id].image_path
    try:
        data = await run_blocking(request, thumbnail_jpeg, path, size,
                                  engine.settings.max_image_pixels)
    except ImageRejected as exc:  # opened under the upload checks: format and pixel limit
        raise HTTPException(404, detail=f"album {album_id!r} has no thumbnail: its image is "
                            f"refused ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError):  # gone, or corrupt past the header
        raise HTTPException(404, detail=f"album {album_id!r} has no thumbnail: its image "
                            "file is missing or unreadable") from None
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=300"})


@router.post("/add", status_code=201, response_model=Created, dependencies=[WriteAccess],
             response_model_exclude_none=True,
             responses={400: {"model": ErrorOut, "description": "malformed multipart body"},
                        401: {"model": ErrorOut},
                        409: {"model": ErrorOut, "description": "id exists, or the same image "
                              "is enrolled (with REJECT_DUPLICATE_IMAGES)"},
                        413: {"model": ErrorOut}, 422: {"model": ErrorOut},
                        507: {"model": ErrorOut, "description": "data disk full; nothing stored"}})
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
        raise HTTPException(422, detail=ALBUM_ID_RULE)
    metadata = _metadata(await request.form())
    data = await image.read()
    album = await run_blocking(request, engine.add, data, album_id, artist, title, metadata)
    same = engine.same_images.first(album.sha256, excluding=album.album_id)
    return Created(album_id=album.album_id, duplicate_of=same)


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
               dependencies=[WriteAccess], responses={**NOT_FOUND, 401: {"model": ErrorOut},
                                                      507: {"model": ErrorOut}})
async def delete_album(request: Request, engine: EngineDep, album_id: AlbumId) -> Response:
    """Delete an album: gone from the next search and after a restart."""
    await run_blocking(request, engine.delete, album_id)
    return Response(status_code=204)
