"""A lean keep-alive HTTP/1.1 client for the benchmarks: one socket per worker, no pooling.

httpx's asyncio client costs about a millisecond of CPU per request on this machine (request
building, multipart encoding, its connection pool), spent on the same 2 cores as the server.
A camera client posting crops needs none of that: this one writes the request bytes and reads
a ``Content-Length`` answer back. ``raw`` sends the image as the body (``Content-Type:
image/jpeg``), ``multipart`` as the form field ``image`` (the original contract).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

BOUNDARY = b"cratewatch-bench-7d1e0c"


@dataclass
class Reply:
    status_code: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def body_of(data: bytes, transport: str, content_type: str = "image/jpeg") -> tuple[bytes, bytes]:
    """(Content-Type header value, body) of one /identify upload."""
    if transport == "raw":
        return content_type.encode(), data
    head = (b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="image"; '
            b'filename="c.jpg"\r\nContent-Type: ' + content_type.encode() + b"\r\n\r\n")
    tail = b"\r\n--" + BOUNDARY + b"--\r\n"
    return b"multipart/form-data; boundary=" + BOUNDARY, head + data + tail


class LeanClient:
    """One keep-alive connection; ``post`` reconnects once if the server closed it."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, content_type: bytes, body: bytes) -> Reply:
        head = (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: " + self.host.encode()
                + b"\r\nContent-Type: " + content_type + b"\r\nContent-Length: "
                + str(len(body)).encode() + b"\r\n\r\n")
        for attempt in (0, 1):
            if self._writer is None:
                await self._connect()
            assert self._reader is not None and self._writer is not None
            try:
                self._writer.write(head + body)
                await self._writer.drain()
                return await self._read(self._reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _read(self, reader: asyncio.StreamReader) -> Reply:
        lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(b":") for line in lines[1:] if line)}
        if b"content-length" not in headers:
            raise ValueError("the lean client reads Content-Length answers only")
        body = await reader.readexactly(int(headers[b"content-length"]))
        if headers.get(b"connection", b"").lower() == b"close":
            await self.close()
        return Reply(status, body)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
        self._reader = self._writer = None
