"""Evaluate a candidate (and a baseline) on the same examples with the same generation settings.

For every example the last assistant turn is the reference and everything before it the prompt.
Each model answers every prompt (greedy by default, seeded when sampling), then the answers are
scored: ROUGE-L, semantic similarity and BERTScore (packaged MiniLM), fact coverage of
``metadata.must_include``, perplexity of the reference, latency and tokens/s, and optionally an
LLM judge. Results are aggregated overall and per category, compared, gated, written as
``report.json`` / ``report.md`` / ``report.html`` and logged to MLflow.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from melancia.data.io import DataError, load_examples
from melancia.evaluation import metrics
from melancia.evaluation.config import EvalConfig
from melancia.evaluation.gate import apply_gate, require_baseline_for_deltas
from melancia.evaluation.metric_registry import METRIC_NAMES, PER_EXAMPLE_METRICS
from melancia.evaluation.models import EvaluatedModel, open_model
from melancia.evaluation.schema import ComparedMetric, ExampleResult, ModelResult, ModelSummary, Report
from melancia.providers.openai_http import OpenAICompatibleProvider
from melancia.retrieval.evaluation import RetrievalResult, evaluate_retrieval, load_queries
from melancia.retrieval.index import KnowledgeIndex
from melancia.settings import get_settings


@dataclass
class EvalExample:
    id: str
    category: str
    prompt: list[dict[str, str]]
    reference: str
    must_include: list[str]

    @property
    def question(self) -> str:
        return next(m["content"] for m in reversed(self.prompt) if m["role"] == "user")


def load_eval_examples(path: Path, max_examples: int | None = None) -> list[EvalExample]:
    """Examples of a ChatML JSONL file; each must end with an assistant turn (the reference)."""
    if not path.exists():
        raise DataError(f"{path}: evaluation dataset not found (build it with melancia data build, or pass --dataset)")
    examples = []
    for number, record in enumerate(load_examples(path), start=1):
        messages = record.get("messages") or []
        if not messages or messages[-1].get("role") != "assistant":
            raise DataError(f"{path}:{number}: field 'messages': expected a conversation ending with an "
                            "assistant turn (the reference answer)")
        meta = record.get("metadata") or {}
        examples.append(EvalExample(str(record.get("id", number)), str(meta.get("category", "geral")),
                                    messages[:-1], messages[-1]["content"], list(meta.get("must_include") or [])))
    if not examples:
        raise DataError(f"{path}: no examples")
    return examples[:max_examples] if max_examples else examples


def dataset_path(config: EvalConfig) -> Path:
    return Path(config.dataset) if config.dataset else get_settings().paths.datasets / "heldout.jsonl"


def evaluate(config: EvalConfig, candidate: str, baseline: str | None = None, *,
             console: Console | None = None) -> Report:
    """The report (:class:`~melancia.evaluation.schema.Report`) of ``candidate`` vs ``baseline``."""
    console = console or Console()
    require_baseline_for_deltas(config.gate, baseline is not None)
    path = dataset_path(config)
    examples = load_eval_examples(path, config.max_examples)
    refs = {"candidate": candidate, **({"baseline": baseline} if baseline else {})}
    judge = _judge(config)
    embedder = metrics.Embedder() if config.semantic else None
    models: dict[str, ModelResult] = {}
    for name, ref in refs.items():
        model = open_model(ref, gguf_type=config.gguf_type)
        try:
            rows = _answer_all(model, name, examples, config, console)
        finally:
            model.close()  # before the next model loads: two in memory at once is what 2 cores can't spare
        _score(rows, examples, embedder, judge)
        models[name] = {"ref": model.ref, "kind": model.kind, **summarise(rows), "examples": rows}
    comparison = _compare(models) if baseline else {}
    return {
        "schema_version": 1, "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "dataset": {"path": str(path), "examples": len(examples), "sha256": _sha256(path)},
        "generation": {"max_tokens": config.max_tokens, "temperature": config.temperature,
                       "seed": config.seed if config.temperature > 0 else None},
        "models": models, "candidate": "candidate", "baseline": "baseline" if baseline else None,
        "comparison": comparison,
        "gate": apply_gate(config.gate, models["candidate"], models.get("baseline")),
        "retrieval": _retrieval(config),
    }


def _retrieval(config: EvalConfig) -> RetrievalResult | None:
    """recall@k and MRR of the knowledge index on the labelled queries, when the config names them."""
    if config.retrieval_queries is None:
        return None
    result = evaluate_retrieval(KnowledgeIndex(chroma_url=get_settings().chroma_url),
                                load_queries(Path(config.retrieval_queries)), config.retrieval_k)
    result.pop("per_mode_queries")
    return result


def _answer_all(model: EvaluatedModel, name: str, examples: list[EvalExample], config: EvalConfig,
                console: Console) -> list[ExampleResult]:
    rows: list[ExampleResult] = []
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        task = progress.add_task(f"{name}: answering", total=len(examples))
        for example in examples:
            generated = model.generate(example.prompt, max_tokens=config.max_tokens, temperature=config.temperature,
                                       seed=config.seed)
            logprobs = model.reference_logprobs(example.prompt, example.reference) if config.perplexity else []
            rows.append({"id": example.id, "category": example.category, "question": example.question,
                         "reference": example.reference, "answer": generated.text.strip(),
                         "latency_s": generated.seconds, "output_tokens": generated.output_tokens,
                         "perplexity": metrics.perplexity(logprobs) if logprobs else None})
            progress.advance(task)
    if not console.is_terminal:
        console.print(f"{name}: answered {len(rows)} examples with {model.ref}")
    return rows


def _score(rows: list[ExampleResult], examples: list[EvalExample], embedder: Any, judge: Any) -> None:
    answers, references = [r["answer"] for r in rows], [r["reference"] for r in rows]
    similarity = embedder.semantic_similarity(answers, references) if embedder else [None] * len(rows)
    bertscore = embedder.bertscore(answers, references) if embedder else [None] * len(rows)
    for row, example, sim, bert in zip(rows, examples, similarity, bertscore):
        coverage, missing = metrics.fact_coverage(row["answer"], example.must_include)
        row.update({"rougeL": metrics.rouge_l(row["answer"], row["reference"]), "semantic_similarity": sim,
                    "bertscore_f1": bert[2] if bert else None,
                    "fact_coverage": coverage if metrics.has_facts(example.must_include) else None,
                    "missing_terms": missing, "judge_score": judge(row) if judge else None})


def summarise(rows: list[ExampleResult]) -> ModelSummary:
    """Aggregates over all rows and per category."""
    latencies = [r["latency_s"] for r in rows]
    tokens, seconds = sum(r["output_tokens"] for r in rows), sum(latencies)
    overall = {m: metrics.aggregate([r[m] for r in rows]) for m in PER_EXAMPLE_METRICS}
    overall.update({"latency_p50_s": metrics.percentile(latencies, 50), "latency_p95_s": metrics.percentile(latencies, 95),
                    "tokens_per_s": tokens / seconds if seconds else None})
    categories = sorted({r["category"] for r in rows})
    overall["per_category"] = {
        c: {"examples": sum(r["category"] == c for r in rows),
            **{m: metrics.aggregate([r[m] for r in rows if r["category"] == c]) for m in PER_EXAMPLE_METRICS}}
        for c in categories}
    return overall


def _compare(models: dict[str, ModelResult]) -> dict[str, ComparedMetric]:
    candidate, baseline = models["candidate"], models["baseline"]
    out: dict[str, ComparedMetric] = {}
    for metric in METRIC_NAMES:
        a, b = candidate.get(metric), baseline.get(metric)
        out[metric] = {"candidate": a, "baseline": b, "delta": a - b if a is not None and b is not None else None}
        if metric in PER_EXAMPLE_METRICS:
            out[metric]["delta_ci95"] = paired_bootstrap_ci(
                [r[metric] for r in candidate["examples"]], [r[metric] for r in baseline["examples"]])
    return out


def paired_bootstrap_ci(candidate: list[float | None], baseline: list[float | None], *, resamples: int = 2000,
                        seed: int = 0) -> list[float] | None:
    """95% interval of the mean per-example difference, resampling examples (the noise of the test set).

    An interval that excludes 0 means the difference is larger than what the choice of examples
    alone would produce.
    """
    pairs = [(a, b) for a, b in zip(candidate, baseline) if a is not None and b is not None]
    if len(pairs) < 2:
        return None
    differences = [a - b for a, b in pairs]
    rng = random.Random(seed)
    n = len(differences)
    means = sorted(sum(differences[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    return [means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- LLM judge

SCORE = re.compile(r"NOTA:\s*([1-5])")
JUDGE_PROMPT = Path(__file__).parent / "prompts" / "judge_v1.md"


def _judge(config: EvalConfig) -> Any:
    """A function row -> score 1..5 (None when the judge's reply has no score), or None without a judge."""
    settings = config.judge
    if not settings.base_url:
        return None

    template = (Path(settings.prompt) if settings.prompt else JUDGE_PROMPT).read_text(encoding="utf-8")
    provider = OpenAICompatibleProvider(base_url=settings.base_url, model=settings.model, name="judge",
                                        api_key_env=settings.api_key_env)

    def score(row: dict[str, Any]) -> float | None:
        prompt = template.format(question=row["question"], reference=row["reference"], answer=row["answer"])
        reply = provider.chat([{"role": "user", "content": prompt}], max_tokens=16, temperature=0.0)
        found = SCORE.search(reply.text)
        return float(found.group(1)) if found else None

    return score
