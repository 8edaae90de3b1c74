"""ASGI middleware: request metrics by route template, body size limit and body deadline.

Load shedding is not here: a request is admitted to the inference queue only once its body is
in (``service.api.admission``), which a middleware that runs on the headers cannot know.
"""

from __future__ import annotations

import json
import math
import time

import anyio
from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator.metrics import Info
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.metrics import Metrics


async def send_json(send: Send, status: int, detail: str, headers: dict[str, str] | None = None
                    ) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def instrument(app: FastAPI, metrics: Metrics) -> None:
    """Count and time every request under its route template (``/catalog/{album_id}``).

    prometheus-fastapi-instrumentator resolves templates through included routers and mounts
    and prefers a full match to a partial one (``POST /catalog/add`` is ``/catalog/add``); its
    own default metrics are not used, ours keep the names dashboards and alerts query. Call it
    after every other middleware so it is outermost and sees 413/408 answers too.
    """

    def record(info: Info) -> None:
        # "none" is the library's label for a path no route serves: keep our historic name.
        endpoint = "unmatched" if info.modified_handler == "none" else info.modified_handler
        metrics.requests.labels(endpoint, info.method, info.modified_status).inc()
        metrics.request_duration.labels(endpoint).observe(info.modified_duration)

    Instrumentator(should_group_status_codes=False, should_group_untemplated=True,
                   registry=metrics.registry).add(record).instrument(app)


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes`` (declared or counted); 408 when the body is too slow."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app, self.max_bytes, self.timeout_s = app, max_bytes, timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await send_json(send, 413, f"body over the {self.max_bytes} byte limit",
                            {"Connection": "close"})
            return
        deadline = time.monotonic() + self.timeout_s
        received = 0
        done = False

        async def limited_receive() -> Message:
            nonlocal received, done
            if done:  # after the body: disconnect waits are not ours to time out
                return await receive()
            try:
                with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                    message = await receive()
            except TimeoutError:
                detail = f"request body not received within {math.ceil(self.timeout_s)} s"
                raise HTTPException(408, detail, {"Connection": "close"}) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                done = not message.get("more_body", False)
                if received > self.max_bytes:
                    raise HTTPException(413, f"body over the {self.max_bytes} byte limit",
                                        {"Connection": "close"})
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
