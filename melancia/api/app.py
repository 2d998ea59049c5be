"""The public gateway: the plan's REST API, OpenAI-compatible chat, keys, limits, cache, metrics, chat page.

``create_app`` wires the pieces; each request passes through: body-size limit -> metrics and
structured log -> API key (unless the path is public) -> scope and tier checks -> rate limit ->
cache -> backend (the router in process, or the KServe predictor) -> query log. Every error is JSON
``{"error": {"code", "type", "message", "request_id"}}``; a stack trace never reaches the client.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import iterate_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from melancia import __version__
from melancia.api.backend import AnswerBackend
from melancia.api.cache import ResponseCache, cache_key
from melancia.api.config import APISettings
from melancia.api.limits import Limits, RateLimiter
from melancia.api.metrics import APIMetrics
from melancia.api.schemas import ErrorResponse, HealthResponse, ModelInfo, QueryRequest, QueryResponse, ReadyResponse
from melancia.api.store import ApiKey, Store
from melancia.router.router import Answer, NoProviderAvailable, Query

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("melancia.api")
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 413, 422, 429, 500, 503)}


@dataclass
class Services:
    settings: APISettings
    backend: AnswerBackend | None
    store: Store
    limiter: RateLimiter
    cache: ResponseCache
    metrics: APIMetrics = field(default_factory=APIMetrics)
    started: float = field(default_factory=time.time)
    draining: bool = False


def services(request: Request) -> Services:
    return request.app.state.services


# ---------------------------------------------------------------------- app


def create_app(settings: APISettings | None = None, *, backend: AnswerBackend | None = None,
               store: Store | None = None, limiter: RateLimiter | None = None,
               cache: ResponseCache | None = None) -> FastAPI:
    """The gateway; missing pieces are built from ``settings`` (the backend at start-up, in the lifespan)."""
    from melancia.api.cache import cache_from_url
    from melancia.api.limits import limiter_from_url

    settings = settings or APISettings()
    state = Services(settings, backend, store or Store(settings.database_url),
                     limiter or limiter_from_url(settings.redis_url),
                     cache or cache_from_url(settings.redis_url, settings.cache_max_entries))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = state.backend is None  # an injected backend belongs to whoever passed it in
        if built:
            state.backend = await asyncio.to_thread(build_backend, settings)
        yield
        if built:
            state.backend.close()
            state.backend = None

    app = FastAPI(title="MelancIA API", version=__version__, lifespan=lifespan, responses=ERROR_RESPONSES,
                  description="Retail Media Ads assistant: answers with sources, exact metric calculations, "
                              "OpenAI-compatible chat. Authenticate with `X-API-Key` or `Authorization: Bearer`.")
    app.state.services = state
    _install_middleware(app, settings)
    _install_error_handlers(app)
    _add_routes(app)
    return app


def build_backend(settings: APISettings) -> AnswerBackend:
    from melancia.api.backend import InProcessBackend, PredictorBackend

    if settings.predictor_url:
        return PredictorBackend(settings.predictor_url, timeout_s=settings.predictor_timeout_s)
    from melancia.router.loading import load_router

    return InProcessBackend(load_router(settings.router_config))


def _install_middleware(app: FastAPI, settings: APISettings) -> None:
    from fastapi.middleware.cors import CORSMiddleware

    @app.middleware("http")
    async def observe(request: Request, call_next: Any) -> Response:
        state: Services = request.app.state.services
        request.state.request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > state.settings.max_body_bytes:
            return _error(request, 413, f"request body over {state.settings.max_body_bytes} bytes")
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
        body = json.dumps({"error": {"code": 413, "type": "payload_too_large",
                                     "message": f"request body over {self.max_bytes} bytes"}}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------------- errors


ERROR_TYPES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
               413: "payload_too_large", 422: "validation_error", 429: "rate_limited", 500: "internal_error",
               503: "service_unavailable"}


def _error(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": status, "type": ERROR_TYPES.get(status, "error"), "message": message,
                      "request_id": getattr(request.state, "request_id", None)}}
    return JSONResponse(body, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(request, exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in exc.errors())
        return _error(request, 422, problems or "invalid request")

    @app.exception_handler(NoProviderAvailable)
    async def unavailable(request: Request, exc: NoProviderAvailable) -> JSONResponse:
        return _error(request, 503, str(exc), {"Retry-After": "30"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error (request %s)", getattr(request.state, "request_id", "?"))
        return _error(request, 500, "internal error; the request id identifies it in the server log")


# ---------------------------------------------------------------------- auth


def authenticated(request: Request) -> ApiKey:
    state: Services = request.app.state.services
    header = request.headers.get("x-api-key") or ""
    if not header:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        header = token.strip() if scheme.lower() == "bearer" else ""
    if not header:
        raise HTTPException(401, "missing API key: send X-API-Key or Authorization: Bearer",
                            headers={"WWW-Authenticate": "Bearer"})
    key = state.store.authenticate(header)
    if key is None:
        raise HTTPException(401, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    request.state.key_name = key.name
    return key


def admin(key: Annotated[ApiKey, Depends(authenticated)]) -> ApiKey:
    if not key.has_scope("admin"):
        raise HTTPException(403, "this endpoint needs an API key with the admin scope")
    return key


UserKey = Annotated[ApiKey, Depends(authenticated)]
AdminKey = Annotated[ApiKey, Depends(admin)]


def effective_tier(state: Services, key: ApiKey, asked: str | None) -> str:
    """The key's tier, or a lower one the client asks for; a higher one is refused (403)."""
    tiers = _backend(state).tiers
    if not tiers:
        raise HTTPException(503, "not ready: the backend has not reported its tiers yet")
    if key.tier not in tiers:
        raise HTTPException(403, f"this key's tier {key.tier!r} is not served (tiers: {', '.join(tiers)})")
    if asked is None or asked == key.tier:
        return key.tier
    if asked not in tiers:
        raise HTTPException(403, f"user_tier {asked!r} is not a tier of this service ({', '.join(tiers)})")
    if tiers.index(asked) > tiers.index(key.tier):
        raise HTTPException(403, f"user_tier {asked!r} is above this key's tier {key.tier!r}")
    return asked


def rate_limit(state: Services, key: ApiKey, tier: str) -> None:
    limits = state.settings.rate_limits.get(tier)
    if limits is None:
        return
    decision = state.limiter.check(key.id, Limits(limits.requests_per_minute, limits.tokens_per_minute))
    if not decision.allowed:
        state.metrics.rate_limited.labels(tier, decision.reason or "limit").inc()
        raise HTTPException(429, f"rate limit reached ({decision.reason}); retry in {decision.retry_after_s} s",
                            headers={"Retry-After": str(decision.retry_after_s)})


# ---------------------------------------------------------------------- answering


def _backend(state: Services) -> AnswerBackend:
    if state.backend is None or state.draining:
        raise HTTPException(503, "not ready")
    return state.backend


def _prepare(state: Services, key: ApiKey, body: QueryRequest) -> tuple[Query, str]:
    tier = effective_tier(state, key, body.user_tier)
    rate_limit(state, key, tier)
    user_id = body.user_id or f"key:{key.id}"
    query = Query(body.question.strip(), tier=tier, user_id=user_id, max_tokens=body.max_tokens,
                  temperature=body.temperature)
    backend = _backend(state)
    params = {"tier": tier, "max_tokens": body.max_tokens, "temperature": body.temperature}
    return query, cache_key(query.question, params, backend.route_key(tier, user_id))


def _record(state: Services, key: ApiKey, query: Query, answer: Answer, *, cached: bool,
            query_id: str | None = None) -> QueryResponse:
    query_id = query_id or uuid.uuid4().hex
    response = QueryResponse(query_id=query_id, answer=answer.text, provider=answer.provider,
                             model_name=answer.model, latency_seconds=answer.latency_seconds,
                             routing_reason=answer.routing_reason, estimated_cost=answer.estimated_cost,
                             success=True, timestamp=datetime.now(UTC), tier=answer.tier, arm=answer.arm,
                             input_tokens=answer.input_tokens, output_tokens=answer.output_tokens, cached=cached,
                             sources=[s.as_dict() for s in answer.sources], calculation=answer.calculation,
                             fallbacks=answer.fallbacks)
    record = {**response.model_dump(mode="json", exclude={"query_id", "tier"}), "key_id": key.id}
    state.store.log_query(query_id, key_id=key.id, user_id=query.user_id, tier=query.tier or "", question=query.question,
                          record=record)
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
    if hit is None:
        return None
    from melancia.api.backend import answer_from_record

    return answer_from_record(hit)


def _remember(state: Services, key_text: str, answer: Answer) -> None:
    if state.settings.cache_ttl_s > 0:
        state.cache.set(key_text, answer.as_dict(), state.settings.cache_ttl_s)


def answer_query(state: Services, key: ApiKey, body: QueryRequest) -> QueryResponse:
    query, key_text = _prepare(state, key, body)
    cached = _cached(state, key_text)
    if cached is not None:
        return _record(state, key, query, cached, cached=True)
    try:
        answer = _backend(state).answer(query)
    except NoProviderAvailable:
        state.metrics.provider_errors.labels(query.tier or "").inc()
        raise
    _remember(state, key_text, answer)
    return _record(state, key, query, answer, cached=False)


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


async def stream_query(state: Services, key: ApiKey, body: QueryRequest) -> AsyncIterator[str]:
    """Server-sent events: ``sources``, ``token`` ({"text"}), then ``done`` (the full response) or ``error``."""
    query, key_text = _prepare(state, key, body)
    cached = _cached(state, key_text)
    if cached is not None:
        yield _sse("sources", [s.as_dict() for s in cached.sources])
        yield _sse("token", {"text": cached.text})
        yield _sse("done", _record(state, key, query, cached, cached=True).model_dump(mode="json"))
        return
    async for event in iterate_in_threadpool(_backend(state).stream(query)):
        if event.kind == "token":
            yield _sse("token", {"text": event.data})
        elif event.kind == "sources":
            yield _sse("sources", event.data)
        elif event.kind == "done":
            _remember(state, key_text, event.data)
            yield _sse("done", _record(state, key, query, event.data, cached=False).model_dump(mode="json"))
        else:
            state.metrics.provider_errors.labels(query.tier or "").inc()
            yield _sse("error", {"code": 503, "type": "service_unavailable", "message": event.data})


# ---------------------------------------------------------------------- routes


def _add_routes(app: FastAPI) -> None:
    from melancia.api.openai_compat import add_openai_routes

    @app.post("/api/v1/query", response_model=QueryResponse, tags=["Queries"])
    async def query(body: QueryRequest, key: UserKey, request: Request) -> QueryResponse:
        return await asyncio.to_thread(answer_query, services(request), key, body)

    @app.post("/api/v1/query/stream", tags=["Queries"], response_class=StreamingResponse,
              responses={200: {"content": {"text/event-stream": {}}}})
    async def query_stream(body: QueryRequest, key: UserKey, request: Request) -> StreamingResponse:
        state = services(request)
        events = stream_query(state, key, body)
        first = await anext(events)  # auth, tier, limits and readiness errors surface as HTTP errors here
        return StreamingResponse(_prepend(first, events), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/api/v1/query/{query_id}", response_model=QueryResponse, tags=["Queries"])
    async def get_query(query_id: str, key: UserKey, request: Request) -> QueryResponse:
        found = services(request).store.get_query(query_id)
        if found is None or (found.get("key_id") != key.id and not key.has_scope("admin")):
            raise HTTPException(404, f"query {query_id!r} not found")
        return QueryResponse(query_id=query_id, tier=found["tier"], **{k: v for k, v in found.items()
                                                                         if k in QueryResponse.model_fields
                                                                         and k not in ("query_id", "tier")})

    @app.get("/api/v1/models", response_model=list[ModelInfo], tags=["Models"])
    async def models(key: UserKey, request: Request) -> list[ModelInfo]:
        backend = services(request).backend
        status = await asyncio.to_thread(backend.status) if backend else {"providers": []}
        return [ModelInfo(provider=p["name"], name=p["model"], kind=p["kind"],
                          status="available" if p["available"] and p["circuit"] != "open" else "unavailable",
                          reason=p["reason"] or (f"circuit open, retry in {p['retry_in_s']} s"
                                                 if p["circuit"] == "open" else None),
                          circuit=p["circuit"], price_input_per_million=p["price_input_per_million"],
                          price_output_per_million=p["price_output_per_million"]) for p in status["providers"]]

    @app.get("/api/v1/models/stats", tags=["Models"])
    async def models_stats(key: UserKey, request: Request) -> dict[str, Any]:
        backend = _backend(services(request))
        return (await asyncio.to_thread(backend.status))["stats"]

    @app.get("/api/v1/stats", tags=["Admin"])
    async def stats(key: AdminKey, request: Request) -> dict[str, Any]:
        state = services(request)
        status = await asyncio.to_thread(_backend(state).status)
        return {"uptime_seconds": round(time.time() - state.started, 3), "version": __version__,
                "started_at": datetime.fromtimestamp(state.started, UTC).isoformat(),
                "queries_logged": state.store.count_queries(), "cache_entries": state.cache.size(),
                "keys": [k.as_dict() for k in state.store.list_keys()], "router": status["stats"]}

    @app.post("/api/v1/cache/clear", tags=["Admin"])
    async def clear_cache(key: AdminKey, request: Request) -> dict[str, Any]:
        return {"message": "cache cleared", "removed": services(request).cache.clear()}

    @app.get("/health", response_model=HealthResponse, tags=["Health"])
    async def health(request: Request) -> HealthResponse:
        state = services(request)
        return HealthResponse(status="draining" if state.draining else "healthy", timestamp=time.time(),
                              version=__version__, uptime_seconds=round(time.time() - state.started, 3))

    @app.get("/ready", response_model=ReadyResponse, tags=["Health"],
             responses={503: {"model": ReadyResponse}})
    async def ready(request: Request) -> JSONResponse:
        state = services(request)
        if state.draining:
            ok, reason = False, "draining: finishing in-flight requests"
        elif state.backend is None:
            ok, reason = False, "starting"
        else:
            status = await asyncio.to_thread(state.backend.status)
            ok, reason = status["ready"], status["reason"]
        return JSONResponse({"ready": ok, "reason": reason}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["Health"], response_class=PlainTextResponse)
    async def metrics(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(services(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", tags=["Root"], response_model=None)
    async def root(request: Request) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            return FileResponse(STATIC / "chat.html", media_type="text/html")
        return JSONResponse({"message": "MelancIA API", "version": __version__, "docs": "/docs",
                             "health": "/health", "chat": "open / in a browser"})

    add_openai_routes(app)


async def _prepend(first: str, rest: AsyncIterator[str]) -> AsyncIterator[str]:
    yield first
    async for item in rest:
        yield item
