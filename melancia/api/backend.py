"""Where the API gets its answers: the router in process (local default) or the KServe predictor over HTTP.

Both backends speak in the router's terms (:class:`Query` in, :class:`Answer` or stream events out),
so the gateway does not care which one it fronts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import httpx

from melancia.protocol.openai import TIER_HEADER, events_from_sse
from melancia.router.loading import load_router
from melancia.router.router import Answer, NoProviderAvailable, Query, Router, StreamEvent


class AnswerBackend(Protocol):
    tiers: list[str]

    def answer(self, query: Query) -> Answer: ...

    def stream(self, query: Query) -> Iterator[StreamEvent]: ...

    def route_key(self, tier: str, user_id: str | None) -> str:
        """What decides which model answers (part of the cache key)."""
        ...

    def status(self) -> dict[str, Any]:
        """``{"ready": bool, "reason": str, "providers": [...], "stats": {...}}``."""
        ...

    def close(self) -> None: ...


class InProcessBackend:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.tiers = list(router.config.tiers)

    def answer(self, query: Query) -> Answer:
        return self.router.answer(query)

    def stream(self, query: Query) -> Iterator[StreamEvent]:
        return self.router.stream(query)

    def route_key(self, tier: str, user_id: str | None) -> str:
        rule = self.router.config.tiers[tier]
        if len(rule.arms) == 1:
            return "/".join(rule.arms[0].chain)
        return "/".join(self.router.route(tier, user_id).arm.chain) if user_id else f"{tier}:random-arm:{id(self)}"

    def status(self) -> dict[str, Any]:
        ready, reason = self.router.ready()
        return {"ready": ready, "reason": reason, "providers": self.router.provider_status(),
                "stats": self.router.stats.snapshot()}

    def close(self) -> None:
        self.router.close()


class PredictorBackend:
    """The KServe predictor at ``url`` (v1 protocol for answers, OpenAI streaming for streams)."""

    def __init__(self, url: str, *, timeout_s: float = 120.0, model: str = "melancia") -> None:
        self.url, self.model = url.rstrip("/"), model
        self._client = httpx.Client(base_url=self.url, timeout=timeout_s)
        self._tiers: list[str] = []

    @property
    def tiers(self) -> list[str]:
        """The predictor's tiers, asked once it answers (empty while it is unreachable)."""
        if not self._tiers:
            self._tiers = list(self.status().get("tiers") or [])
        return self._tiers

    def answer(self, query: Query) -> Answer:
        instance = {"question": query.question, "user_id": query.user_id, "tier": query.tier,
                    "max_tokens": query.max_tokens, "temperature": query.temperature}
        response = self._post(f"/v1/models/{self.model}:predict",
                              {"instances": [{k: v for k, v in instance.items() if v is not None}]})
        return Answer.from_dict(response.json()["predictions"][0])

    def stream(self, query: Query) -> Iterator[StreamEvent]:
        body = {"model": self.model, "stream": True, "user": query.user_id, "max_tokens": query.max_tokens,
                "temperature": query.temperature,
                "messages": [*query.history, {"role": "user", "content": query.question}]}
        headers = {TIER_HEADER: query.tier} if query.tier else {}
        with self._client.stream("POST", "/openai/v1/chat/completions", json={k: v for k, v in body.items()
                                                                                if v is not None},
                                 headers=headers) as response:
            if response.status_code >= 400:
                response.read()
                raise NoProviderAvailable(f"predictor answered HTTP {response.status_code}: {response.text[:200]}")
            yield from events_from_sse(response.iter_lines())

    def route_key(self, tier: str, user_id: str | None) -> str:
        return f"predictor:{tier}:{user_id or ''}"

    def status(self) -> dict[str, Any]:
        try:
            response = self._client.get("/melancia/v1/status")
            response.raise_for_status()
            return response.json()
        except httpx.HTTPError as exc:
            return {"ready": False, "reason": f"predictor unreachable at {self.url} ({type(exc).__name__})",
                    "providers": [], "stats": {}}

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        try:
            response = self._client.post(path, json=body)
        except httpx.HTTPError as exc:
            raise NoProviderAvailable(f"predictor unreachable at {self.url} ({type(exc).__name__})") from None
        if response.status_code == 400:
            raise ValueError(response.json().get("error", "bad request"))
        if response.status_code >= 500:
            raise NoProviderAvailable(f"predictor answered HTTP {response.status_code}: "
                                      f"{response.json().get('error', '')}"[:300])
        return response

    def close(self) -> None:
        self._client.close()


def build_backend(predictor_url: str | None, router_config: Any, *, timeout_s: float = 120.0) -> AnswerBackend:
    """The predictor at ``predictor_url`` when one is named, else the router of ``router_config`` in process."""
    if predictor_url:
        return PredictorBackend(predictor_url, timeout_s=timeout_s)
    return InProcessBackend(load_router(router_config))
