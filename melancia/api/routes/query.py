"""``/api/v1/query``: ask (JSON or server-sent events) and read a logged query back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import StreamingResponse

from melancia.api import service
from melancia.api.deps import ServicesDep, UserKey
from melancia.api.schemas import QueryRequest, QueryResponse
from melancia.router.router import Query, StreamEvent

router = APIRouter(prefix="/api/v1/query", tags=["Queries"])


def _query(body: QueryRequest) -> Query:
    return Query(body.question.strip(), user_id=body.user_id, max_tokens=body.max_tokens,
                 temperature=body.temperature)


@router.post("", response_model=QueryResponse)
async def query(body: QueryRequest, key: UserKey, state: ServicesDep) -> QueryResponse:
    prepared = await asyncio.to_thread(service.prepare, state, key, _query(body), body.user_tier)
    return (await asyncio.to_thread(service.answer, state, key, prepared)).response


@router.post("/stream", response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
async def query_stream(body: QueryRequest, key: UserKey, state: ServicesDep) -> StreamingResponse:
    """Server-sent events: ``sources``, ``token`` ({"text"}), then ``done`` (the full response) or ``error``."""
    prepared = await asyncio.to_thread(service.prepare, state, key, _query(body), body.user_tier)
    events = server_sent_events(service.stream(state, key, prepared))
    return StreamingResponse(await started(events), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/{query_id}", response_model=QueryResponse)
async def get_query(query_id: str, key: UserKey, state: ServicesDep) -> QueryResponse:
    found = state.store.get_query(query_id)
    if found is None or (found.get("key_id") != key.id and not key.has_scope("admin")):
        raise HTTPException(404, f"query {query_id!r} not found")
    return QueryResponse(query_id=query_id, tier=found["tier"], **{k: v for k, v in found.items()
                                                                     if k in QueryResponse.model_fields
                                                                     and k not in ("query_id", "tier")})


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


async def server_sent_events(events: AsyncIterator[StreamEvent]) -> AsyncIterator[str]:
    async for event in events:
        if event.kind == "token":
            yield _sse("token", {"text": event.data})
        elif event.kind == "sources":
            yield _sse("sources", event.data)
        elif event.kind == "done":
            yield _sse("done", event.data.response.model_dump(mode="json"))
        else:
            yield _sse("error", {"code": 503, "type": "service_unavailable", "message": event.data})


async def started(stream: AsyncIterator[str]) -> AsyncIterator[str]:
    """``stream`` with its first item already produced, so a backend that cannot start answers as an HTTP
    error (the exception handlers) instead of a broken stream."""
    first = await anext(stream)

    async def rest() -> AsyncIterator[str]:
        yield first
        async for item in stream:
            yield item

    return rest()
