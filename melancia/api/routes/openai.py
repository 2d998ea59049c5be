"""The gateway's OpenAI-compatible routes: ``POST /v1/chat/completions`` and ``GET /v1/models``.

The official ``openai`` client works unchanged with ``base_url="http://host:8000/v1"`` and the API key
as its ``api_key`` (sent as ``Authorization: Bearer``). The tier is the key's; ``user`` keeps a user in
one A/B arm. A completion goes through the same service as ``/api/v1/query``: rate limits, the cache
(keyed with the earlier turns of the conversation), the query log, the token budget and the metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse, StreamingResponse

from melancia.api import service
from melancia.api.deps import ServicesDep, UserKey
from melancia.api.routes.query import started
from melancia.protocol.openai import ChatRequest, completion_body, model_list, sse_chunks
from melancia.router.router import StreamEvent

MODEL_ID = "melancia"
router = APIRouter(prefix="/v1", tags=["OpenAI"])


@router.get("/models")
async def list_models(key: UserKey) -> dict[str, Any]:
    return model_list(MODEL_ID)


@router.post("/chat/completions", response_model=None)
async def chat_completions(body: ChatRequest, key: UserKey, state: ServicesDep) -> JSONResponse | StreamingResponse:
    if body.model != MODEL_ID:
        raise HTTPException(404, f"model {body.model!r} not found; use {MODEL_ID!r}")
    prepared = await asyncio.to_thread(service.prepare, state, key, body.to_query(None), None)
    if not body.stream:
        recorded = await asyncio.to_thread(service.answer, state, key, prepared)
        return JSONResponse(completion_body(recorded.answer, MODEL_ID))
    chunks = sse_chunks(_answers(service.stream(state, key, prepared)), MODEL_ID, body.include_usage)
    return StreamingResponse(await started(chunks), media_type="text/event-stream")


async def _answers(events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
    """The service's events with the bare answer in ``done`` (what the OpenAI chunks carry)."""
    async for event in events:
        yield StreamEvent("done", event.data.answer) if event.kind == "done" else event
