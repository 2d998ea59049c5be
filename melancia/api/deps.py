"""What a request of the gateway depends on: the shared services, the caller's key, its tier and its budget.

Routes take these as ``Annotated`` dependencies (:data:`ServicesDep`, :data:`UserKey`,
:data:`AdminKey`); :func:`effective_tier` and :func:`rate_limit` run for every question, whichever
route it came through.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from melancia.api.backend import AnswerBackend
from melancia.api.cache import ResponseCache
from melancia.api.config import APISettings
from melancia.api.limits import Limits, RateLimiter
from melancia.api.metrics import APIMetrics
from melancia.api.store import ApiKey, Store


@dataclass
class Services:
    """Everything the routes share, built once per app (``app.state.services``)."""

    settings: APISettings
    backend: AnswerBackend | None
    store: Store
    limiter: RateLimiter
    cache: ResponseCache
    metrics: APIMetrics = field(default_factory=APIMetrics)
    started: float = field(default_factory=time.time)
    draining: bool = False

    def ready_backend(self) -> AnswerBackend:
        """The backend, or 503 while it is loading or the server drains."""
        if self.backend is None or self.draining:
            raise HTTPException(503, "not ready")
        return self.backend


def services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(services)]


def authenticated(request: Request, state: ServicesDep) -> ApiKey:
    """The caller's key from ``X-API-Key`` or ``Authorization: Bearer``; 401 when missing or invalid."""
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


UserKey = Annotated[ApiKey, Depends(authenticated)]


def admin(key: UserKey) -> ApiKey:
    if not key.has_scope("admin"):
        raise HTTPException(403, "this endpoint needs an API key with the admin scope")
    return key


AdminKey = Annotated[ApiKey, Depends(admin)]


def effective_tier(state: Services, key: ApiKey, asked: str | None) -> str:
    """The key's tier, or a lower one the client asks for; a higher one is refused (403)."""
    tiers = state.ready_backend().tiers
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
    """429 with ``Retry-After`` when the key has used its tier's requests or tokens for this minute."""
    limits = state.settings.rate_limits.get(tier)
    if limits is None:
        return
    decision = state.limiter.check(key.id, Limits(limits.requests_per_minute, limits.tokens_per_minute))
    if not decision.allowed:
        state.metrics.rate_limited.labels(tier, decision.reason or "limit").inc()
        raise HTTPException(429, f"rate limit reached ({decision.reason}); retry in {decision.retry_after_s} s",
                            headers={"Retry-After": str(decision.retry_after_s)})
