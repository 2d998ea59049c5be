"""Answering a question for a caller: tier and limits, the cache, the backend, the query log and the metrics.

Every route that answers (``/api/v1/query``, its stream, and the OpenAI-compatible
``/v1/chat/completions``) goes through :func:`prepare`, then :func:`answer` or :func:`stream`, so each
answer is rate limited, cached, logged with a query id, counted in the key's token budget and in the
metrics the same way, whichever protocol asked for it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.concurrency import iterate_in_threadpool

from melancia.api.cache import cache_key
from melancia.api.deps import Services, effective_tier, rate_limit
from melancia.api.schemas import QueryResponse
from melancia.api.store import ApiKey
from melancia.router.router import Answer, NoProviderAvailable, Query, StreamEvent

log = logging.getLogger("melancia.api")


@dataclass(frozen=True)
class Prepared:
    """A question allowed through: the query as the backend gets it, and its cache key."""

    query: Query
    cache_key: str


@dataclass(frozen=True)
class Recorded:
    """An answer and the query-log record it was stored as."""

    answer: Answer
    response: QueryResponse


def prepare(state: Services, key: ApiKey, query: Query, asked_tier: str | None) -> Prepared:
    """Check the tier (403) and the rate limit (429) and readiness (503); fill in the tier and the user."""
    tier = effective_tier(state, key, asked_tier)
    rate_limit(state, key, tier)
    query = dataclasses.replace(query, tier=tier, user_id=query.user_id or f"key:{key.id}")
    backend = state.ready_backend()
    params: dict[str, object] = {"tier": tier, "max_tokens": query.max_tokens, "temperature": query.temperature}
    if query.history:  # a conversation is cached with its earlier turns, never as the bare question
        params["history"] = query.history
    return Prepared(query, cache_key(query.question, params, backend.route_key(tier, query.user_id)))


def answer(state: Services, key: ApiKey, prepared: Prepared) -> Recorded:
    """The cached answer, else the backend's; logged and counted either way."""
    cached = _cached(state, prepared.cache_key)
    if cached is not None:
        return Recorded(cached, record(state, key, prepared.query, cached, cached=True))
    try:
        fresh = state.ready_backend().answer(prepared.query)
    except NoProviderAvailable:
        state.metrics.provider_errors.labels(prepared.query.tier or "").inc()
        raise
    _remember(state, prepared.cache_key, fresh)
    return Recorded(fresh, record(state, key, prepared.query, fresh, cached=False))


async def stream(state: Services, key: ApiKey, prepared: Prepared) -> AsyncIterator[StreamEvent]:
    """The router's events (``sources``, ``token``, then ``done`` with a :class:`Recorded`, or ``error``)."""
    cached = _cached(state, prepared.cache_key)
    if cached is not None:
        yield StreamEvent("sources", [s.as_dict() for s in cached.sources])
        yield StreamEvent("token", cached.text)
        yield StreamEvent("done", Recorded(cached, record(state, key, prepared.query, cached, cached=True)))
        return
    async for event in iterate_in_threadpool(state.ready_backend().stream(prepared.query)):
        if event.kind == "done":
            _remember(state, prepared.cache_key, event.data)
            yield StreamEvent("done", Recorded(event.data, record(state, key, prepared.query, event.data,
                                                                  cached=False)))
        elif event.kind == "error":
            state.metrics.provider_errors.labels(prepared.query.tier or "").inc()
            yield event
        else:
            yield event


def record(state: Services, key: ApiKey, query: Query, answer: Answer, *, cached: bool,
           query_id: str | None = None) -> QueryResponse:
    """Log the answer under a new query id; a fresh one also counts against the key's tokens and in the metrics."""
    query_id = query_id or uuid.uuid4().hex
    response = QueryResponse(query_id=query_id, answer=answer.text, provider=answer.provider,
                             model_name=answer.model, latency_seconds=answer.latency_seconds,
                             routing_reason=answer.routing_reason, estimated_cost=answer.estimated_cost,
                             success=True, timestamp=datetime.now(UTC), tier=answer.tier, arm=answer.arm,
                             input_tokens=answer.input_tokens, output_tokens=answer.output_tokens, cached=cached,
                             sources=[s.as_dict() for s in answer.sources], calculation=answer.calculation,
                             fallbacks=answer.fallbacks)
    stored = {**response.model_dump(mode="json", exclude={"query_id", "tier"}), "key_id": key.id}
    state.store.log_query(query_id, key_id=key.id, user_id=query.user_id, tier=query.tier or "",
                          question=query.question, record=stored)
    if not cached:
        state.limiter.add_tokens(key.id, answer.input_tokens + answer.output_tokens)
        state.metrics.observe_answer(answer)
    if state.settings.log_prompts:
        log.info(json.dumps({"event": "answer", "query_id": query_id, "question": query.question,
                             "answer": answer.text}, ensure_ascii=False))
    return response


def _cached(state: Services, key_text: str) -> Answer | None:
    if state.settings.cache_ttl_s <= 0:
        return None
    hit = state.cache.get(key_text)
    state.metrics.cache.labels("hit" if hit else "miss").inc()
    return None if hit is None else Answer.from_dict(hit)


def _remember(state: Services, key_text: str, answer: Answer) -> None:
    if state.settings.cache_ttl_s > 0:
        state.cache.set(key_text, answer.as_dict(), state.settings.cache_ttl_s)
