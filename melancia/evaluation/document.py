"""The evaluation report as a document: formatted numbers and a list of blocks, in reading order.

Both files people read (:mod:`melancia.evaluation.render`: Markdown and HTML) are rendered from the
same blocks (headings, paragraphs, lists, tables, quotes, figures), so they always say the same thing;
only the HTML carries the plots. Numbers show with 3 decimals and ``None`` as "n/a".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

from melancia.evaluation.metric_registry import CATEGORY_TABLE_METRICS, METRIC_NAMES
from melancia.evaluation.schema import ExampleResult, Report

ANSWER_CHARS = 600
MISSING = "n/a"


# ---------------------------------------------------------------- formatting


def fmt(value: Any) -> str:
    """A number with 3 decimals, an integer as is, ``None`` as "n/a", anything else as text."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def fmt_delta(value: float | None) -> str:
    """A signed difference with 3 decimals ("+0.120", "-0.050"), or "n/a"."""
    return MISSING if value is None else f"{value:+.3f}"


def truncate(text: str, limit: int = ANSWER_CHARS) -> str:
    """``text`` cut to ``limit`` characters at a word boundary, marked with an ellipsis when cut."""
    text = (text or "").strip()
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit * 0.8:
        cut = cut[:space]
    return cut.rstrip() + " …"


# ---------------------------------------------------------------- reading the report


class Change(TypedDict):
    """One example seen by both models, with both answers and both scores (rougeL + fact coverage)."""

    id: str
    category: str | None
    question: str
    reference: str
    candidate_answer: str
    baseline_answer: str
    candidate_score: float
    baseline_score: float
    delta: float


def model_names(report: Report) -> list[str]:
    """Candidate first, then the baseline, then any other evaluated model, in report order."""
    first = [n for n in (report.get("candidate"), report.get("baseline")) if n]
    return first + [name for name in report.get("models", {}) if name not in first]


def baseline_name(report: Report) -> str | None:
    """The baseline's name when the report has one with results, else ``None``."""
    name = report.get("baseline")
    return name if name and name in report.get("models", {}) else None


def metric_delta(report: Report, metric: str) -> float | None:
    """Candidate minus baseline for an aggregate metric: the runner's comparison, else computed here."""
    compared = (report.get("comparison") or {}).get(metric)
    if compared and compared.get("delta") is not None:
        return compared["delta"]
    baseline = baseline_name(report)
    if baseline is None:
        return None
    candidate_value = report["models"][report["candidate"]].get(metric)
    baseline_value = report["models"][baseline].get(metric)
    if candidate_value is None or baseline_value is None:
        return None
    return candidate_value - baseline_value


def example_score(example: ExampleResult) -> float:
    """What a win or a loss is measured by: rougeL plus fact coverage (a missing value counts as 0)."""
    return (example.get("rougeL") or 0.0) + (example.get("fact_coverage") or 0.0)


def biggest_changes(report: Report, n: int = 5) -> tuple[list[Change], list[Change]]:
    """The ``n`` examples the candidate improved most over the baseline, and the ``n`` it made worst.

    Examples are paired by id; each item holds the id, category, question, reference, both answers,
    both scores (rougeL + fact coverage) and their difference. Wins come largest gain first, losses
    largest drop first; unchanged examples are neither. Without a baseline both lists are empty.
    """
    baseline = baseline_name(report)
    if baseline is None:
        return [], []
    baseline_by_id = {e["id"]: e for e in report["models"][baseline].get("examples", [])}
    changes: list[Change] = []
    for ours in report["models"][report["candidate"]].get("examples", []):
        theirs = baseline_by_id.get(ours["id"])
        if theirs is not None:
            changes.append(describe_change(ours, theirs))
    wins = sorted((c for c in changes if c["delta"] > 0), key=lambda c: (-c["delta"], c["id"]))
    losses = sorted((c for c in changes if c["delta"] < 0), key=lambda c: (c["delta"], c["id"]))
    return wins[:n], losses[:n]


def describe_change(candidate: ExampleResult, baseline: ExampleResult) -> Change:
    """One example seen by both models, with both answers and both scores."""
    candidate_score, baseline_score = example_score(candidate), example_score(baseline)
    return {
        "id": candidate["id"],
        "category": candidate.get("category"),
        "question": candidate.get("question", ""),
        "reference": candidate.get("reference", ""),
        "candidate_answer": candidate.get("answer", ""),
        "baseline_answer": baseline.get("answer", ""),
        "candidate_score": candidate_score,
        "baseline_score": baseline_score,
        "delta": candidate_score - baseline_score,
    }


# ---------------------------------------------------------------- blocks


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Paragraph:
    text: str
    tone: str | None = None  # "pass" or "fail": shown as a verdict


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Quote:
    label: str
    text: str


@dataclass
class Figure:
    key: str  # a key of the plots given to render_html; Markdown leaves figures out
    caption: str


Block = Heading | Paragraph | Bullets | Table | Quote | Figure


@dataclass
class Document:
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)


def build_document(report: Report) -> Document:
    """Every section of the report, in reading order."""
    doc = Document()
    doc.add(Heading(1, f"Evaluation report: {report.get('candidate')}"))
    settings_section(doc, report)
    gate_section(doc, report)
    metrics_section(doc, report)
    category_section(doc, report)
    doc.add(Figure("latency", "Latency per example"))
    changes_section(doc, report)
    retrieval_section(doc, report)
    return doc


def settings_section(doc: Document, report: Report) -> None:
    dataset = report.get("dataset") or {}
    generation = report.get("generation") or {}
    dataset_line = (f"Dataset: {fmt(dataset.get('path'))} ({fmt(dataset.get('examples'))} examples, "
                    f"sha256 {fmt(dataset.get('sha256'))})")
    generation_line = (f"Generation: max_tokens {fmt(generation.get('max_tokens'))}, "
                       f"temperature {fmt(generation.get('temperature'))}, seed {fmt(generation.get('seed'))}")
    model_lines = [f"{role_label(report, name)}: {fmt(report['models'][name].get('ref'))}"
                   for name in model_names(report)]
    doc.add(Heading(2, "Setup"),
            Bullets([f"Created: {fmt(report.get('created_at'))}", dataset_line, generation_line, *model_lines]))


def role_label(report: Report, name: str) -> str:
    """A model's name with its role, e.g. "run-7 (candidate)"."""
    if name == report.get("candidate"):
        return f"{name} (candidate)"
    if name == report.get("baseline"):
        return f"{name} (baseline)"
    return name


def gate_section(doc: Document, report: Report) -> None:
    doc.add(Heading(2, "Gate"))
    gate = report.get("gate")
    if not gate:
        doc.add(Paragraph("no gate"))
        return
    passed = bool(gate.get("passed"))
    doc.add(Paragraph("PASSED" if passed else "FAILED", tone="pass" if passed else "fail"))
    rows = [["pass" if c.get("passed") else "FAIL", str(c.get("metric")), str(c.get("rule")),
             fmt(c.get("value")), fmt(c.get("threshold"))] for c in gate.get("checks", [])]
    doc.add(Table(["check", "metric", "rule", "value", "threshold"], rows))


def metrics_section(doc: Document, report: Report) -> None:
    candidate = report["candidate"]
    baseline = baseline_name(report)
    doc.add(Heading(2, "Metrics"))
    models = report["models"]
    if baseline is None:
        rows = [[metric, fmt(models[candidate].get(metric))] for metric in METRIC_NAMES]
        doc.add(Table(["metric", candidate], rows))
        return
    rows = [[metric, fmt(models[candidate].get(metric)), fmt(models[baseline].get(metric)),
             fmt_delta(metric_delta(report, metric)), delta_interval(report, metric)] for metric in METRIC_NAMES]
    doc.add(Table(["metric", f"{candidate} (candidate)", f"{baseline} (baseline)", "delta",
                   "delta 95% CI (paired bootstrap)"], rows))


def delta_interval(report: Report, metric: str) -> str:
    interval = ((report.get("comparison") or {}).get(metric) or {}).get("delta_ci95")
    return f"[{fmt_delta(interval[0])}, {fmt_delta(interval[1])}]" if interval else "n/a"


def category_section(doc: Document, report: Report) -> None:
    doc.add(Heading(2, "Per category"))
    rows = []
    for category in categories(report):
        for name in model_names(report):
            scores = report["models"][name].get("per_category", {}).get(category)
            if scores is not None:
                rows.append([category, name, fmt(scores.get("examples")),
                             *(fmt(scores.get(metric)) for metric in CATEGORY_TABLE_METRICS)])
    doc.add(Table(["category", "model", "examples", *CATEGORY_TABLE_METRICS], rows))
    doc.add(Figure("categories", "Metrics per category"))


def categories(report: Report) -> list[str]:
    """Every category any model was scored on, sorted."""
    return sorted({c for model in report["models"].values() for c in model.get("per_category", {})})


def changes_section(doc: Document, report: Report) -> None:
    if baseline_name(report) is None:
        return
    wins, losses = biggest_changes(report)
    for title, changes in (("Biggest wins", wins), ("Biggest losses", losses)):
        doc.add(Heading(2, f"{title} (rougeL + fact coverage, candidate vs baseline)"))
        if not changes:
            doc.add(Paragraph("none"))
        for change in changes:
            change_blocks(doc, report, change)


def change_blocks(doc: Document, report: Report, change: Change) -> None:
    doc.add(
        Heading(3, f"{change['id']} ({fmt(change['category'])}): {fmt_delta(change['delta'])}"),
        Paragraph(f"Question: {truncate(change['question'])}"),
        Paragraph(f"Reference: {truncate(change['reference'])}"),
        Quote(f"{report['candidate']} (candidate, score {fmt(change['candidate_score'])})",
              truncate(change["candidate_answer"])),
        Quote(f"{report['baseline']} (baseline, score {fmt(change['baseline_score'])})",
              truncate(change["baseline_answer"])),
    )


def retrieval_section(doc: Document, report: Report) -> None:
    retrieval = report.get("retrieval")
    if not retrieval:
        return
    doc.add(Heading(2, "Retrieval"), Bullets([
        f"k: {fmt(retrieval.get('k'))}",
        f"queries: {fmt(retrieval.get('queries'))}",
        f"recall@k: {fmt(retrieval.get('recall_at_k'))}",
        f"MRR: {fmt(retrieval.get('mrr'))}",
    ]))
    modes = retrieval.get("modes") or {}
    if modes:
        doc.add(Table(["mode", "recall@k", "MRR"],
                      [[mode, fmt(row.get("recall_at_k")), fmt(row.get("mrr"))] for mode, row in modes.items()]))
    rows = [[q.get("query", ""), ", ".join(q.get("expected", [])), ", ".join(q.get("retrieved", [])),
             fmt(q.get("rank"))] for q in retrieval.get("per_query", [])]
    if rows:
        doc.add(Table(["query", "expected", "retrieved", "rank"], rows))
