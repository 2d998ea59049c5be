"""OpenAI-compatible ``POST /v1/chat/completions`` and ``GET /v1/models`` on the gateway.

The official ``openai`` client works unchanged with ``base_url="http://host:8000/v1"`` and the API key
as its ``api_key`` (sent as ``Authorization: Bearer``). The tier is the key's; ``user`` keeps a user in
one A/B arm. Rate limits apply as on ``/api/v1/query``; conversations are not cached.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from melancia.api.app import UserKey, _backend, effective_tier, rate_limit, services
from melancia.serving.openai_routes import ChatRequest, completion_body, sse_chunks

MODEL_ID = "melancia"


def add_openai_routes(app: FastAPI) -> None:
    @app.get("/v1/models", tags=["OpenAI"])
    async def list_models(key: UserKey) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "melancia"}]}

    @app.post("/v1/chat/completions", tags=["OpenAI"], response_model=None)
    async def chat_completions(body: ChatRequest, key: UserKey, request: Request) -> JSONResponse | StreamingResponse:
        state = services(request)
        if body.model != MODEL_ID:
            raise HTTPException(404, f"model {body.model!r} not found; use {MODEL_ID!r}")
        tier = effective_tier(state, key, None)
        rate_limit(state, key, tier)
        query = body.to_query(tier)
        query.user_id = query.user_id or f"key:{key.id}"
        backend = _backend(state)
        if not body.stream:
            answer = await asyncio.to_thread(backend.answer, query)
            state.metrics.observe_answer(answer)
            state.limiter.add_tokens(key.id, answer.input_tokens + answer.output_tokens)
            return JSONResponse(completion_body(answer, MODEL_ID))

        async def events():
            async for event in iterate_in_threadpool(backend.stream(query)):
                if event.kind == "done":
                    state.metrics.observe_answer(event.data)
                    state.limiter.add_tokens(key.id, event.data.input_tokens + event.data.output_tokens)
                yield event

        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(sse_chunks(events(), MODEL_ID, include_usage), media_type="text/event-stream")
