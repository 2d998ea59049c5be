"""Building a ready router from its config: providers resolved and loaded, index opened.

A provider that cannot be built (an unset API key, a registry alias with no version yet, a missing
file) is kept in the router as unavailable, with the reason, so the rest still serves and the status
endpoints say what is wrong. Local models are loaded here, not on the first request, so readiness
means the weights are in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from melancia.providers.base import Provider, ProviderError
from melancia.providers.fake import FakeProvider
from melancia.providers.llama_cpp import LlamaCppProvider
from melancia.providers.openai_http import OpenAICompatibleProvider
from melancia.providers.references import resolve_model
from melancia.providers.transformers_local import TransformersProvider
from melancia.retrieval.index import IndexNotFoundError, KnowledgeIndex
from melancia.router.breaker import CircuitBreaker
from melancia.router.config import ProviderSpec, RouterConfig, load_router_config
from melancia.router.router import ProviderSlot, Router, provider_configured
from melancia.settings import get_settings

DEFAULT_ROUTER_CONFIG = Path("configs/router.yaml")


def build_provider(name: str, spec: ProviderSpec, *, tracking_uri: str | None = None) -> Provider:
    """The provider ``spec`` describes (local models are resolved here but loaded lazily)."""
    if spec.kind == "fake":
        return FakeProvider(name, spec.model, reply=spec.reply)
    if spec.kind == "openai":
        assert spec.base_url is not None
        return OpenAICompatibleProvider(base_url=spec.base_url, model=spec.model, name=name,
                                        api_key_env=spec.api_key_env, timeout_s=spec.timeout_s,
                                        max_retries=spec.max_retries)
    resolved = resolve_model(spec.model, spec.kind, tracking_uri=tracking_uri, gguf_type=spec.gguf_type)
    if spec.kind == "llama_cpp":
        assert resolved.gguf is not None
        return LlamaCppProvider(resolved.gguf, name=name, n_ctx=spec.n_ctx, model_label=resolved.label)
    assert resolved.base is not None
    return TransformersProvider(resolved.base, resolved.adapter, name=name, device=spec.device,
                                model_label=resolved.label)


def build_router(config: RouterConfig, *, index: Any = None, load: bool = True) -> Router:
    """A router over ``config``; with ``load``, local models are loaded and the index opened now."""
    slots = {}
    for name, spec in config.providers.items():
        breaker = CircuitBreaker(config.breaker.failures, config.breaker.cooldown_s)
        slots[name] = _slot(name, spec, breaker, config.tracking_uri, load)
    if index is None and load and config.retrieval.enabled:
        index = open_index(config)
    return Router(config, slots, index=index)


def _slot(name: str, spec: ProviderSpec, breaker: CircuitBreaker, tracking_uri: str | None,
          load: bool) -> ProviderSlot:
    why = provider_configured(spec)
    if why:
        return ProviderSlot(name, spec, None, breaker, unavailable=why)
    try:
        provider = build_provider(name, spec, tracking_uri=tracking_uri)
        if load and spec.kind in ("llama_cpp", "transformers") and not provider.health():
            raise ProviderError(f"{spec.model}: the model did not load")
    except ProviderError as exc:
        return ProviderSlot(name, spec, None, breaker, unavailable=str(exc))
    return ProviderSlot(name, spec, provider, breaker)


def open_index(config: RouterConfig) -> Any:
    """The knowledge index, or None when there is none yet (the router then answers without sources)."""
    index = KnowledgeIndex(config.retrieval.index_dir, chroma_url=get_settings().chroma_url)
    try:
        index.stats()
    except IndexNotFoundError:
        return None
    return index


def load_router(path: Path | str = DEFAULT_ROUTER_CONFIG, overrides: list[str] | None = None) -> Router:
    return build_router(load_router_config(path, overrides))
