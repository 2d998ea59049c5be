"""Every aggregate metric an evaluation reports, in one table: the one list of metric names.

The gate's config checks its metric names against it, the runner aggregates and compares what it
lists, MLflow receives it, and the report and the console show it in this order. A new metric is
added here once, with what kind of metric it is.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    per_example: bool
    """Scored on each example, so it is aggregated per category and its delta gets a bootstrap interval;
    otherwise it is measured over the whole run (latency percentiles, throughput)."""
    category_table: bool = False
    """Shown in the report's per-category table."""
    plotted: bool = False
    """Drawn in the report's per-category plot (scores in [0, 1])."""
    higher_is_better: bool = True


METRICS: tuple[Metric, ...] = (
    Metric("rougeL", "ROUGE-L F-measure against the reference (accent-keeping words)", True, True, True),
    Metric("semantic_similarity", "cosine similarity of MiniLM sentence embeddings", True, True, True),
    Metric("bertscore_f1", "BERTScore F1 with MiniLM token embeddings", True, True),
    Metric("fact_coverage", "share of the example's must_include terms in the answer", True, True, True),
    Metric("perplexity", "perplexity of the reference under the model", True, True, higher_is_better=False),
    Metric("judge_score", "LLM-as-judge score, 1 to 5 (only with a judge)", True),
    Metric("latency_p50_s", "median seconds to a complete answer", False, higher_is_better=False),
    Metric("latency_p95_s", "95th percentile of seconds to a complete answer", False, higher_is_better=False),
    Metric("tokens_per_s", "generated tokens per second over the run", False),
)

METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in METRICS)
"""Every metric, in report order (what a gate check may name)."""
PER_EXAMPLE_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS if m.per_example)
CATEGORY_TABLE_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS if m.category_table)
PLOTTED_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS if m.plotted)
