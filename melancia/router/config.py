"""The router's config (``configs/router.yaml``): providers, prices, tier rules, A/B arms, fallbacks.

Loaded with the same typed YAML loader as the experiment configs, so a typo names its file, line and
field. Secrets never appear here: an HTTP provider names the environment variable holding its key.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path

from melancia.config import ConfigError, check, load_config
from melancia.models.persona import DEFAULT_SYSTEM_PROMPT

ProviderKind = typing.Literal["llama_cpp", "transformers", "openai", "fake"]


@dataclass
class ProviderSpec:
    """One model behind one provider implementation."""

    kind: ProviderKind
    """llama_cpp (GGUF on CPU), transformers (base + adapter, CPU or CUDA), openai (any OpenAI-compatible
    server), fake (scripted, for tests)."""
    model: str
    """llama_cpp / transformers: a serving reference (models:/NAME@ALIAS, run folder, .gguf, BASE+ADAPTER,
    packaged:NAME); openai: the model name at the server (a vLLM LoRA adapter name works)."""
    base_url: str | None = None
    """openai: the server's base URL, e.g. https://api.openai.com/v1, http://ollama:11434/v1."""
    api_key_env: str | None = None
    """openai: environment variable with the key; when named but unset the provider is skipped."""
    timeout_s: float = 60.0
    """Longest wait for one answer before the router moves on to the next provider in the chain."""
    max_retries: int = 1
    """openai: retries of the SDK on connection errors and 5xx before the router falls back."""
    price_input_per_million: float = 0.0
    """US$ per million input tokens (0 for local models), for cost estimates."""
    price_output_per_million: float = 0.0
    """US$ per million output tokens."""
    device: typing.Literal["auto", "cpu", "cuda"] = "auto"
    """transformers: where the model runs."""
    n_ctx: int = 4096
    """llama_cpp: context window in tokens."""
    gguf_type: typing.Literal["f32", "f16", "q8_0"] = "f16"
    """llama_cpp: precision when an adapter or base must first be exported to GGUF."""
    reply: str = "Resposta: {question}"
    """fake: the scripted answer."""

    def __post_init__(self) -> None:
        check(self.timeout_s > 0, "timeout_s", "a number > 0", self.timeout_s)
        check(self.max_retries >= 0, "max_retries", "an integer >= 0", self.max_retries)
        check(self.price_input_per_million >= 0 and self.price_output_per_million >= 0,
               "price_input_per_million", "prices >= 0", self.price_input_per_million)
        check(self.kind != "openai" or bool(self.base_url), "base_url", "a URL for an openai provider", self.base_url)


@dataclass
class Arm:
    """One arm of a tier's rule: a fallback chain of providers, tried in order."""

    name: str
    """Shown in stats and in the routing reason."""
    chain: list[str] = field(default_factory=list)
    """Provider names, first choice first."""
    weight: float = 1.0
    """Share of users (relative to the other arms of the tier)."""

    def __post_init__(self) -> None:
        check(bool(self.chain), "chain", "at least one provider", self.chain)
        check(self.weight > 0, "weight", "a number > 0", self.weight)


@dataclass
class TierRule:
    """How requests of one tier are routed: one arm, or an A/B split over several."""

    arms: list[Arm] = field(default_factory=list)
    """With more than one arm, a user is put in an arm by a stable hash of (experiment, user_id)."""
    experiment: str | None = None
    """Name of the A/B experiment (part of the hash: renaming it reshuffles users)."""

    def __post_init__(self) -> None:
        check(bool(self.arms), "arms", "at least one arm", self.arms)
        names = [arm.name for arm in self.arms]
        check(len(set(names)) == len(names), "arms", "distinct arm names", names)


@dataclass
class BreakerConfig:
    """Circuit breaker per provider."""

    failures: int = 3
    """Consecutive failures that open the circuit (the provider is skipped)."""
    cooldown_s: float = 30.0
    """How long an open circuit skips the provider before one trial request (half-open)."""


@dataclass
class RetrievalConfig:
    """Retrieval-augmented answers from the knowledge index."""

    enabled: bool = True
    """Put the top chunks in the prompt and return them as sources."""
    k: int = 3
    """Chunks per question."""
    max_words_per_chunk: int = 120
    """Chunks are cut to this many words in the prompt (small models have small contexts)."""
    index_dir: Path | None = None
    """Index folder (None: MELANCIA_HOME/index, or the Chroma server of MELANCIA_CHROMA_URL)."""
    required: bool = True
    """Whether the predictor is ready only with the index loaded (False: answer without sources)."""


@dataclass
class RouterConfig:
    """Everything the router needs; see configs/router.yaml."""

    providers: dict[str, ProviderSpec] = field(default_factory=dict)
    """Named providers."""
    tiers: dict[str, TierRule] = field(default_factory=dict)
    """Rules by user tier (e.g. free, premium)."""
    default_tier: str = "free"
    """Tier of requests that name none."""
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    calculator: bool = True
    """Answer calculation questions (ACOS, ROAS, CPC, ...) exactly with the calculator, not the model."""
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    """System prompt of every model answer."""
    max_tokens: int = 256
    """Default longest answer."""
    temperature: float = 0.2
    """Default sampling temperature."""
    tracking_uri: str | None = None
    """MLflow registry for models:/ references (None: MLFLOW_TRACKING_URI, else MELANCIA_HOME's sqlite)."""

    def __post_init__(self) -> None:
        check(bool(self.providers), "providers", "at least one provider", self.providers)
        check(self.default_tier in self.tiers, "default_tier", f"one of {sorted(self.tiers)}", self.default_tier)
        for tier, rule in self.tiers.items():
            for arm in rule.arms:
                unknown = [name for name in arm.chain if name not in self.providers]
                if unknown:
                    raise ConfigError(f"tiers: tier {tier!r} arm {arm.name!r} names unknown providers {unknown}; "
                                      f"expected some of {sorted(self.providers)}", field="tiers")


def load_router_config(path: Path | str, overrides: list[str] | None = None) -> RouterConfig:
    return load_config(RouterConfig, path, overrides)
