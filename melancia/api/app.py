"""The public gateway: the plan's REST API, OpenAI-compatible chat, keys, limits, cache, metrics, chat page.

``create_app`` wires the pieces; each request passes through: body-size limit -> metrics and
structured log (:mod:`~melancia.api.middleware`) -> API key, scope and tier checks -> rate limit
(:mod:`~melancia.api.deps`) -> cache -> backend (the router in process, or the KServe predictor) ->
query log (:mod:`~melancia.api.service`). Every error is JSON (:mod:`~melancia.api.errors`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from melancia import __version__
from melancia.api.backend import AnswerBackend, build_backend
from melancia.api.cache import ResponseCache, cache_from_url
from melancia.api.config import APISettings
from melancia.api.deps import Services
from melancia.api.errors import ERROR_RESPONSES, install_error_handlers
from melancia.api.limits import RateLimiter, limiter_from_url
from melancia.api.middleware import install_middleware
from melancia.api.routes import admin, health, models, openai, query
from melancia.api.store import Store


def create_app(settings: APISettings | None = None, *, backend: AnswerBackend | None = None,
               store: Store | None = None, limiter: RateLimiter | None = None,
               cache: ResponseCache | None = None) -> FastAPI:
    """The gateway; missing pieces are built from ``settings`` (the backend at start-up, in the lifespan)."""
    settings = settings or APISettings()
    state = Services(settings, backend, store or Store(settings.database_url),
                     limiter or limiter_from_url(settings.redis_url),
                     cache or cache_from_url(settings.redis_url, settings.cache_max_entries))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = state.backend is None  # an injected backend belongs to whoever passed it in
        if built:
            state.backend = await asyncio.to_thread(build_backend, settings.predictor_url, settings.router_config,
                                                    timeout_s=settings.predictor_timeout_s)
        yield
        if built:
            state.backend.close()
            state.backend = None

    app = FastAPI(title="MelancIA API", version=__version__, lifespan=lifespan, responses=ERROR_RESPONSES,
                  description="Retail Media Ads assistant: answers with sources, exact metric calculations, "
                              "OpenAI-compatible chat. Authenticate with `X-API-Key` or `Authorization: Bearer`.")
    app.state.services = state
    install_middleware(app, settings)
    install_error_handlers(app)
    for routes in (query, models, admin, health, openai):
        app.include_router(routes.router)
    return app
