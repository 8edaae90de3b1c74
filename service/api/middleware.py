"""Pure ASGI middleware: request metrics, load shedding, body size limit and body deadline."""

from __future__ import annotations

import json
import math
import time

import anyio
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.metrics import Metrics


async def send_json(send: Send, status: int, detail: str, headers: dict[str, str] | None = None
                    ) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class MetricsMiddleware:
    """Counts and times every request by route template (bounded label cardinality)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: list[BaseRoute]) -> None:
        self.app, self.metrics, self.routes = app, metrics, routes

    def endpoint(self, scope: Scope) -> str:
        """The matching route's template (``/catalog/{album_id}``), else "unmatched"."""
        for route in self.routes:
            match, _ = route.matches(scope)
            if match != Match.NONE:
                return str(getattr(route, "path", "unmatched"))
        return "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            endpoint = self.endpoint(scope)
            self.metrics.requests.labels(endpoint, scope["method"], str(status)).inc()
            self.metrics.request_duration.labels(endpoint).observe(time.perf_counter() - started)


class LoadShedMiddleware:
    """Bounded in-flight queue for /identify: beyond ``limit``, answer 503 + Retry-After at once.

    Shedding before the body is read keeps an overloaded server's latency bounded.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, limit: int, path: str = "/identify"
                 ) -> None:
        self.app, self.metrics, self.limit, self.path = app, metrics, limit, path
        self.inflight = 0  # only touched on the event loop: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        if self.inflight >= self.limit:
            self.metrics.shed.inc()
            await send_json(send, 503, "too many identify requests in flight; retry shortly",
                            {"Retry-After": "1"})
            return
        self.inflight += 1
        self.metrics.inflight.set(self.inflight)
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1
            self.metrics.inflight.set(self.inflight)


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
