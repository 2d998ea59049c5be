"""The predictor's own routes on KServe's app: OpenAI chat completions and the status the gateway reads.

``POST /openai/v1/chat/completions`` (streaming or not) and ``GET /openai/v1/models``, at the paths of
KServe's OpenAI layer, so the official ``openai`` client works with ``base_url=http://predictor/openai/v1``.
KServe's own OpenAI layer (kserve >= 0.15) builds its types from vLLM's protocol module, which needs
the vLLM package (CUDA wheels, gigabytes) even for a CPU predictor; these routes speak the same
protocol with the types of :mod:`melancia.protocol.openai` instead. The caller's tier comes from the
``X-Melancia-Tier`` header, set by the API gateway after authentication. ``GET /melancia/v1/status``
reports readiness, providers with their circuits, and the router's stats.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException
from fastapi.responses import JSONResponse, StreamingResponse

from melancia.protocol.openai import ChatRequest, completion_body, model_card, model_list, sse_chunks


def openai_router(get_predictor: Callable[[], Any]) -> APIRouter:
    """Routes bound to the predictor returned by ``get_predictor`` (looked up per request)."""
    router = APIRouter(prefix="/openai/v1", tags=["OpenAI"])

    @router.get("/models")
    async def models() -> dict[str, Any]:
        predictor = get_predictor()
        return model_list(predictor.name)

    @router.post("/chat/completions", response_model=None)
    async def chat_completions(request: ChatRequest, x_melancia_tier: Annotated[str | None, Header()] = None
                               ) -> JSONResponse | StreamingResponse:
        predictor = get_predictor()
        if request.model != predictor.name:
            raise HTTPException(404, f"model {request.model!r} not found; this server has {predictor.name!r}")
        query = request.to_query(x_melancia_tier)
        if not request.stream:
            answer = await asyncio.to_thread(predictor.answer, query)
            return JSONResponse(completion_body(answer, predictor.name))
        return StreamingResponse(sse_chunks(predictor.stream(query), predictor.name, request.include_usage),
                                 media_type="text/event-stream")

    @router.get("/models/{model}")
    async def card(model: str) -> dict[str, Any]:
        predictor = get_predictor()
        if model != predictor.name:
            raise HTTPException(404, f"model {model!r} not found")
        return model_card(predictor.name)

    return router


def status_router(get_predictor: Callable[[], Any]) -> APIRouter:
    """``GET /melancia/v1/status``: readiness, providers with their circuits, and the router's stats."""
    router = APIRouter(prefix="/melancia/v1", tags=["MelancIA"])

    @router.get("/status")
    async def status() -> dict[str, Any]:
        predictor = get_predictor()
        loaded = predictor.router
        if loaded is None:
            return {"ready": False, "reason": predictor.not_ready_reason, "providers": [], "stats": {}, "tiers": []}
        return {"ready": predictor.ready, "reason": predictor.not_ready_reason, "tiers": list(loaded.config.tiers),
                "providers": loaded.provider_status(), "stats": loaded.stats.snapshot()}

    return router
