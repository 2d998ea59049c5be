"""The API on a real uvicorn server in a background thread, over a router of scripted providers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from melancia.api.app import create_app
from melancia.api.backend import InProcessBackend
from melancia.api.config import APISettings, TierLimits
from melancia.api.server import DrainingServer
from melancia.api.store import Store
from melancia.config import from_dict
from melancia.providers.fake import FakeProvider
from melancia.retrieval.index import Hit
from melancia.router.breaker import CircuitBreaker
from melancia.router.config import RouterConfig
from melancia.router.router import ProviderSlot, Router
from tests.servers import free_port

ROUTER = {
    "providers": {"local": {"kind": "fake", "model": "melancia-tuned"},
                  "strong": {"kind": "fake", "model": "strong-model", "price_input_per_million": 1.0,
                             "price_output_per_million": 4.0}},
    "tiers": {"free": {"arms": [{"name": "fine-tuned", "chain": ["local"]}]},
              "premium": {"arms": [{"name": "strong", "chain": ["strong", "local"]}]},
              "trial": {"arms": [{"name": "fine-tuned", "chain": ["local"]}]}},
    "retrieval": {"enabled": True, "k": 1},
}


class OneDocIndex:
    def query(self, text: str, k: int = 5, **_):
        return [Hit("acos#0", "acos", "ACOS", "O que é", "metricas", "data/corpus/acos.md",
                    "ACOS = investimento / receita de anúncios.", 0.5, 1)][:k]


def replier(name: str):
    """Answers "[name] Resposta: <the question>" (the question without the retrieved documents)."""
    return lambda messages: f"[{name}] Resposta: " + messages[-1]["content"].rsplit("Pergunta: ", 1)[-1]


def fake_router() -> Router:
    config = from_dict(RouterConfig, ROUTER)
    slots = {name: ProviderSlot(name, spec, FakeProvider(name, spec.model, reply=replier(name)), CircuitBreaker())
             for name, spec in config.providers.items()}
    return Router(config, slots, index=OneDocIndex())


@dataclass
class LiveAPI:
    url: str
    app: object
    server: DrainingServer
    router: Router
    keys: dict[str, str]

    def provider(self, name: str) -> FakeProvider:
        return self.router.slots[name].provider


def api_settings(**overrides) -> APISettings:
    limits = {"free": TierLimits(requests_per_minute=1000, tokens_per_minute=10**7),
              "premium": TierLimits(requests_per_minute=1000, tokens_per_minute=10**7),
              "trial": TierLimits(requests_per_minute=2, tokens_per_minute=10**7)}
    return APISettings(rate_limits=limits, **overrides)


def create_keys(store: Store) -> dict[str, str]:
    """Plaintext keys by name: free-user, premium-user, admin (premium) and trial-user (2 requests a minute)."""
    return {name: store.create_key(name, tier, scopes)[1]
            for name, tier, scopes in (("free-user", "free", ["user"]), ("premium-user", "premium", ["user"]),
                                       ("admin", "premium", ["admin"]), ("trial-user", "trial", ["user"]))}


@contextmanager
def live_api(settings: APISettings | None = None, *, limiter=None, cache=None, store: Store | None = None,
             keys: dict[str, str] | None = None, router: Router | None = None) -> Iterator[LiveAPI]:
    router = router or fake_router()
    store = store or Store()
    keys = keys or create_keys(store)
    app = create_app(settings or api_settings(), backend=InProcessBackend(router), store=store, limiter=limiter,
                     cache=cache)
    port = free_port()
    server = DrainingServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=10), app)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise AssertionError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield LiveAPI(f"http://127.0.0.1:{port}", app, server, router, keys)
    finally:
        server.should_exit = True
        thread.join(15)
