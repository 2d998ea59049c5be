"""The shape of an evaluation report: what the runner fills, ``report.json`` holds and the documents show.

The report is the contract between the runner, the files it writes and whoever reads them (the Job's
verdict, MLflow, people). Its aggregate metric fields are those of
:data:`melancia.evaluation.metric_registry.METRICS`; a test checks that the two agree.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from melancia.retrieval.evaluation import RetrievalResult


class DatasetInfo(TypedDict):
    path: str
    examples: int
    sha256: str


class GenerationInfo(TypedDict):
    max_tokens: int
    temperature: float
    seed: int | None
    """None when decoding is greedy."""


class ExampleResult(TypedDict):
    """One example as one model answered it, with its scores (None: not computed)."""

    id: str
    category: str
    question: str
    reference: str
    answer: str
    latency_s: float
    output_tokens: int
    perplexity: float | None
    rougeL: float
    semantic_similarity: float | None
    bertscore_f1: float | None
    fact_coverage: float | None
    """None when the example lists no must_include terms."""
    missing_terms: list[str]
    judge_score: float | None


class CategoryScores(TypedDict):
    """Per-example metrics averaged over one category."""

    examples: int
    rougeL: float | None
    semantic_similarity: float | None
    bertscore_f1: float | None
    fact_coverage: float | None
    perplexity: float | None
    judge_score: NotRequired[float | None]


class Scores(TypedDict):
    """One model's aggregate metrics: the fields of the metric registry, None where not computed."""

    rougeL: float | None
    semantic_similarity: float | None
    bertscore_f1: float | None
    fact_coverage: float | None
    perplexity: float | None
    judge_score: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    tokens_per_s: float | None


class ModelSummary(Scores):
    per_category: dict[str, CategoryScores]


class ModelResult(ModelSummary):
    """What one model (``candidate``, ``baseline``) scored."""

    ref: str
    """What was evaluated (GGUF path, HF dir, base+adapter, hub id)."""
    kind: str
    examples: list[ExampleResult]


class ComparedMetric(TypedDict):
    candidate: float | None
    baseline: float | None
    delta: float | None
    """candidate - baseline."""
    delta_ci95: NotRequired[list[float] | None]
    """Paired bootstrap 95% interval of the delta (per-example metrics only)."""


class GateCheckResult(TypedDict):
    metric: str
    rule: str
    """e.g. ``fact_coverage - baseline >= -0.05``."""
    value: float | None
    threshold: float
    passed: bool


class GateResult(TypedDict):
    passed: bool
    checks: list[GateCheckResult]


class Report(TypedDict):
    schema_version: int
    created_at: str
    """UTC, ``2026-11-24T22:00:00Z``."""
    dataset: DatasetInfo
    generation: GenerationInfo
    models: dict[str, ModelResult]
    """By name: ``candidate`` and, when compared, ``baseline``."""
    candidate: str
    baseline: str | None
    comparison: dict[str, ComparedMetric]
    """By metric; empty without a baseline."""
    gate: GateResult | None
    """None when no gate is configured."""
    retrieval: RetrievalResult | None
    """The knowledge index on labelled queries, when the config names them."""
