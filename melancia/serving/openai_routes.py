"""OpenAI-compatible chat completions on the predictor, at the paths of KServe's OpenAI layer.

``POST /openai/v1/chat/completions`` (streaming or not) and ``GET /openai/v1/models``, so the
official ``openai`` client works with ``base_url=http://predictor/openai/v1``. KServe's own OpenAI
layer (kserve >= 0.15) builds its request and response types from vLLM's protocol module, which
needs the vLLM package (CUDA wheels, gigabytes) even for a CPU predictor; these routes implement the
same protocol on the same ModelServer app with the ``openai`` package's own response types instead.

Every response carries a ``melancia`` object (provider, routing reason, sources, cost), which OpenAI
clients ignore and MelancIA clients read. The caller's tier comes from the ``X-Melancia-Tier`` header,
set by the API gateway after authentication; ``user`` is the A/B bucketing id.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from fastapi import APIRouter, Header, HTTPException
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from melancia.router.router import Answer, Query, StreamEvent

TIER_HEADER = "X-Melancia-Tier"


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.get("text", "") for part in self.content if part.get("type") == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=4096)
    temperature: float | None = Field(default=None, ge=0, le=2)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    seed: int | None = None

    def to_query(self, tier: str | None) -> Query:
        turns = [{"role": "assistant" if m.role == "assistant" else "user", "content": m.text()}
                 for m in self.messages if m.role in ("user", "assistant")]
        if not turns or turns[-1]["role"] != "user" or not turns[-1]["content"].strip():
            raise HTTPException(400, "messages: the last message must be a non-empty user message")
        return Query(turns[-1]["content"].strip(), tier=tier, user_id=self.user,
                     max_tokens=self.max_completion_tokens or self.max_tokens, temperature=self.temperature,
                     history=turns[:-1])


def extension(answer: Answer) -> dict[str, Any]:
    record = answer.as_dict()
    record.pop("answer")
    return record


def completion_body(answer: Answer, model: str) -> dict[str, Any]:
    from openai.types.chat import ChatCompletion

    body = ChatCompletion(
        id=f"chatcmpl-{uuid.uuid4().hex}", object="chat.completion", created=int(time.time()), model=model,
        choices=[{"index": 0, "message": {"role": "assistant", "content": answer.text},
                  "finish_reason": answer.finish_reason if answer.finish_reason in ("stop", "length") else "stop"}],
        usage={"prompt_tokens": answer.input_tokens, "completion_tokens": answer.output_tokens,
               "total_tokens": answer.input_tokens + answer.output_tokens},
    ).model_dump(exclude_none=True)
    body["melancia"] = extension(answer)
    return body


def _chunk(chunk_id: str, model: str, delta: dict[str, Any], finish: str | None = None,
           usage: dict[str, int] | None = None, extra: dict[str, Any] | None = None) -> str:
    from openai.types.chat import ChatCompletionChunk

    chunk = ChatCompletionChunk(id=chunk_id, object="chat.completion.chunk", created=int(time.time()), model=model,
                                choices=[{"index": 0, "delta": delta, "finish_reason": finish}],
                                usage=usage).model_dump(exclude_none=True)
    if extra:
        chunk["melancia"] = extra
    return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"


async def sse_chunks(events: AsyncIterator[StreamEvent], model: str, include_usage: bool) -> AsyncIterator[str]:
    """OpenAI streaming format: a role chunk, content chunks, a final chunk, ``[DONE]``."""
    chunk_id = f"chatcmpl-{uuid.uuid4().hex}"
    yield _chunk(chunk_id, model, {"role": "assistant", "content": ""})
    async for event in events:
        if event.kind == "token":
            yield _chunk(chunk_id, model, {"content": event.data})
        elif event.kind == "done":
            answer: Answer = event.data
            usage = {"prompt_tokens": answer.input_tokens, "completion_tokens": answer.output_tokens,
                     "total_tokens": answer.input_tokens + answer.output_tokens} if include_usage else None
            yield _chunk(chunk_id, model, {}, answer.finish_reason if answer.finish_reason == "length" else "stop",
                         usage, extension(answer))
        elif event.kind == "error":
            yield f"data: {json.dumps({'error': {'message': event.data, 'type': 'service_unavailable'}})}\n\n"
    yield "data: [DONE]\n\n"


def openai_router(get_predictor: Callable[[], Any]) -> APIRouter:
    """Routes bound to the predictor returned by ``get_predictor`` (looked up per request)."""
    router = APIRouter(prefix="/openai/v1", tags=["OpenAI"])

    @router.get("/models")
    async def models() -> dict[str, Any]:
        predictor = get_predictor()
        return {"object": "list", "data": [{"id": predictor.name, "object": "model", "created": 0,
                                            "owned_by": "melancia"}]}

    @router.post("/chat/completions", response_model=None)
    async def chat_completions(request: ChatRequest,
                               x_melancia_tier: str | None = Header(default=None)) -> JSONResponse | StreamingResponse:
        import asyncio

        predictor = get_predictor()
        if request.model != predictor.name:
            raise HTTPException(404, f"model {request.model!r} not found; this server has {predictor.name!r}")
        query = request.to_query(x_melancia_tier)
        if not request.stream:
            answer = await asyncio.to_thread(predictor.answer, query)
            return JSONResponse(completion_body(answer, predictor.name))
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        return StreamingResponse(sse_chunks(predictor.stream(query), predictor.name, include_usage),
                                 media_type="text/event-stream")

    @router.get("/models/{model}")
    async def model_card(model: str) -> dict[str, Any]:
        predictor = get_predictor()
        if model != predictor.name:
            raise HTTPException(404, f"model {model!r} not found")
        return {"id": predictor.name, "object": "model", "created": 0, "owned_by": "melancia"}

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
