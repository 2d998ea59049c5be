"""What wraps every request: the body-size limit, metrics and one JSON log line, a request id, CORS.

:class:`BodyLimit` refuses oversized bodies as they stream in (a chunked upload carries no
Content-Length); the ``observe`` middleware refuses an announced oversized body at once, times the
request, counts it by route and status and logs it with the key's name (never the question, unless
``log_prompts`` is on).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response

from melancia.api.config import APISettings
from melancia.api.errors import error_body, error_response

log = logging.getLogger("melancia.api")


def install_middleware(app: FastAPI, settings: APISettings) -> None:
    @app.middleware("http")
    async def observe(request: Request, call_next: Any) -> Response:
        state = request.app.state.services
        request.state.request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > state.settings.max_body_bytes:
            return error_response(request, 413, f"request body over {state.settings.max_body_bytes} bytes")
        started = time.perf_counter()
        state.metrics.in_flight.inc()
        try:
            response = await call_next(request)
        finally:
            state.metrics.in_flight.dec()
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        elapsed = time.perf_counter() - started
        state.metrics.requests.labels(path, request.method, str(response.status_code)).inc()
        state.metrics.latency.labels(path).observe(elapsed)
        response.headers["X-Request-ID"] = request.state.request_id
        log.info(json.dumps({"event": "request", "request_id": request.state.request_id, "method": request.method,
                             "route": path, "status": response.status_code, "seconds": round(elapsed, 4),
                             "key": getattr(request.state, "key_name", None)}))
        return response

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_credentials=settings.cors_allow_credentials, allow_methods=["GET", "POST"],
                           allow_headers=["X-API-Key", "Authorization", "Content-Type"])


class BodyLimit:
    """Refuses bodies over ``max_bytes`` as they stream in (chunked uploads carry no Content-Length).

    Past the limit the client gets 413 at once and the app sees a disconnect, so it stops reading; what the
    app would still send is dropped.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0
        refused = False

        async def limited_receive() -> Any:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                refused = True
                await self._refuse(send)
                return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Any) -> None:
            if not refused:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)

    async def _refuse(self, send: Any) -> None:
        body = json.dumps(error_body(413, f"request body over {self.max_bytes} bytes")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
