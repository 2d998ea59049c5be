"""Routes that need no key: liveness, readiness, Prometheus metrics, and the chat page at ``/``.

These, with FastAPI's ``/docs`` and ``/openapi.json``, are the only public paths; every other route
depends on an API key.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from melancia import __version__
from melancia.api.deps import ServicesDep
from melancia.api.schemas import HealthResponse, ReadyResponse

STATIC = Path(__file__).resolve().parents[1] / "static"
router = APIRouter()


@router.get("/health", response_model=HealthResponse, tags=["Health"])
async def health(state: ServicesDep) -> HealthResponse:
    return HealthResponse(status="draining" if state.draining else "healthy", timestamp=time.time(),
                          version=__version__, uptime_seconds=round(time.time() - state.started, 3))


@router.get("/ready", response_model=ReadyResponse, tags=["Health"], responses={503: {"model": ReadyResponse}})
async def ready(state: ServicesDep) -> JSONResponse:
    if state.draining:
        ok, reason = False, "draining: finishing in-flight requests"
    elif state.backend is None:
        ok, reason = False, "starting"
    else:
        status = await asyncio.to_thread(state.backend.status)
        ok, reason = status["ready"], status["reason"]
    return JSONResponse({"ready": ok, "reason": reason}, status_code=200 if ok else 503)


@router.get("/metrics", response_class=PlainTextResponse, tags=["Health"])
async def metrics(state: ServicesDep) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/", tags=["Root"], response_model=None)
async def root(request: Request) -> Response:
    if "text/html" in request.headers.get("accept", ""):
        return FileResponse(STATIC / "chat.html", media_type="text/html")
    return JSONResponse({"message": "MelancIA API", "version": __version__, "docs": "/docs",
                         "health": "/health", "chat": "open / in a browser"})
