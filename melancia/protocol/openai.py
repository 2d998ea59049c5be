"""OpenAI chat completions: the request body, the response and stream chunks, and reading a stream back.

Built on the ``openai`` package's own response types, so the official client reads what we send.
Every response carries a ``melancia`` object (provider, routing reason, sources, cost), which OpenAI
clients ignore and MelancIA clients read: :func:`events_from_sse` turns such a stream back into the
router's events. The caller's tier travels in the :data:`TIER_HEADER` header (set by the gateway after
authentication); ``user`` is the A/B bucketing id.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

from fastapi import HTTPException
from openai.types.chat import ChatCompletion, ChatCompletionChunk
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
        """The last user message as the question, the earlier user and assistant turns as its history."""
        turns = [{"role": "assistant" if m.role == "assistant" else "user", "content": m.text()}
                 for m in self.messages if m.role in ("user", "assistant")]
        if not turns or turns[-1]["role"] != "user" or not turns[-1]["content"].strip():
            raise HTTPException(400, "messages: the last message must be a non-empty user message")
        return Query(turns[-1]["content"].strip(), tier=tier, user_id=self.user,
                     max_tokens=self.max_completion_tokens or self.max_tokens, temperature=self.temperature,
                     history=turns[:-1])

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


def model_card(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 0, "owned_by": "melancia"}


def model_list(model: str) -> dict[str, Any]:
    return {"object": "list", "data": [model_card(model)]}


def extension(answer: Answer) -> dict[str, Any]:
    """The ``melancia`` object: the answer's record without its text."""
    record = answer.as_dict()
    record.pop("answer")
    return record


def _usage(answer: Answer) -> dict[str, int]:
    return {"prompt_tokens": answer.input_tokens, "completion_tokens": answer.output_tokens,
            "total_tokens": answer.input_tokens + answer.output_tokens}


def completion_body(answer: Answer, model: str) -> dict[str, Any]:
    body = ChatCompletion(
        id=f"chatcmpl-{uuid.uuid4().hex}", object="chat.completion", created=int(time.time()), model=model,
        choices=[{"index": 0, "message": {"role": "assistant", "content": answer.text},
                  "finish_reason": answer.finish_reason if answer.finish_reason in ("stop", "length") else "stop"}],
        usage=_usage(answer),
    ).model_dump(exclude_none=True)
    body["melancia"] = extension(answer)
    return body


def _chunk(chunk_id: str, model: str, delta: dict[str, Any], finish: str | None = None,
           usage: dict[str, int] | None = None, extra: dict[str, Any] | None = None) -> str:
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
            yield _chunk(chunk_id, model, {}, answer.finish_reason if answer.finish_reason == "length" else "stop",
                         _usage(answer) if include_usage else None, extension(answer))
        elif event.kind == "error":
            yield f"data: {json.dumps({'error': {'message': event.data, 'type': 'service_unavailable'}})}\n\n"
    yield "data: [DONE]\n\n"


def events_from_sse(lines: Iterator[str]) -> Iterator[StreamEvent]:
    """The router's events back from a stream :func:`sse_chunks` wrote (the gateway reading the predictor)."""
    text: list[str] = []
    for line in lines:
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        if "error" in chunk:
            yield StreamEvent("error", chunk["error"].get("message", "predictor error"))
            return
        for choice in chunk.get("choices", []):
            piece = choice.get("delta", {}).get("content")
            if piece:
                text.append(piece)
                yield StreamEvent("token", piece)
        if "melancia" in chunk:
            answer = Answer.from_dict({**chunk["melancia"], "answer": "".join(text)})
            yield StreamEvent("sources", [s.as_dict() for s in answer.sources])
            yield StreamEvent("done", answer)
