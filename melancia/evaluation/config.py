"""The evaluation stage's config: dataset, generation, scores, the optional judge and the promotion gate."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path

from melancia.config import check
from melancia.evaluation.metric_registry import METRIC_NAMES
from melancia.tracking import TrackingConfig


@dataclass
class GateCheck:
    """One condition the candidate must meet to be promoted."""

    metric: str
    """Aggregate metric of the report, e.g. fact_coverage, rougeL, perplexity, latency_p95_s."""
    min: float | None = None
    """The candidate's value must be at least this."""
    max: float | None = None
    """The candidate's value must be at most this (perplexity, latency)."""
    min_delta: float | None = None
    """candidate - baseline must be at least this (negative allows a bounded regression)."""
    max_delta: float | None = None
    """candidate - baseline must be at most this (e.g. latency may grow by at most this much)."""

    def __post_init__(self) -> None:
        check(self.metric in METRIC_NAMES, "metric", f"one of {list(METRIC_NAMES)}", self.metric)
        bounds = (self.min, self.max, self.min_delta, self.max_delta)
        check(any(b is not None for b in bounds), "min", "at least one of min, max, min_delta, max_delta", None)


@dataclass
class JudgeConfig:
    """Optional LLM-as-judge through any OpenAI-compatible endpoint."""

    base_url: str | None = None
    """Endpoint of the judge (None: no judge)."""
    model: str = "gpt-4o-mini"
    """Model name at the endpoint."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the key (may be unset for local servers)."""
    prompt: Path | None = None
    """Judge prompt with {question}, {reference}, {answer}; None: the versioned prompts/judge_v1.md."""


@dataclass
class EvalConfig:
    """How ``melancia eval`` compares a candidate with a baseline and decides promotion."""

    dataset: Path | None = None
    """ChatML JSONL whose last assistant turn is the reference; None: MELANCIA_HOME/datasets/heldout.jsonl."""
    max_examples: int | None = None
    """Evaluate only the first N examples (None: all)."""
    max_tokens: int = 160
    """Longest generated answer, in tokens."""
    temperature: float = 0.0
    """0: greedy (deterministic); above 0: sampled with ``seed``."""
    seed: int = 0
    """Sampling seed (ignored when greedy)."""
    gguf_type: typing.Literal["f32", "f16", "q8_0"] = "f16"
    """Precision a Hugging Face model is exported to when it must run through llama.cpp."""
    perplexity: bool = True
    """Compute the perplexity of each reference under each model."""
    semantic: bool = True
    """Semantic similarity and BERTScore with the packaged MiniLM."""
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    """Optional LLM-as-judge."""
    gate: list[GateCheck] = field(default_factory=list)
    """Every check must pass for the candidate to be promoted (empty: no gate)."""
    retrieval_queries: Path | None = None
    """Labelled queries (query + relevant document ids) to also evaluate the knowledge index; None: skip."""
    retrieval_k: int = 5
    """Cut-off of recall@k and MRR for the retrieval evaluation."""
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    """MLflow experiment (the training run's, so evaluations sit next to it)."""

    def __post_init__(self) -> None:
        check(self.max_examples is None or self.max_examples >= 1, "max_examples", "null or an integer >= 1",
               self.max_examples)
        check(1 <= self.max_tokens <= 8192, "max_tokens", "an integer in 1..8192", self.max_tokens)
        check(0.0 <= self.temperature <= 2.0, "temperature", "a number in [0, 2]", self.temperature)
