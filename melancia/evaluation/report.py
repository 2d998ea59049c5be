"""Evaluation reports: one computed report dict rendered as ``report.json``, ``report.md`` and ``report.html``.

The runner fills the report dict; this module only presents it. The dict is the contract between the
runner and the operator reading the files::

    {
      "schema_version": 1,
      "created_at": "2026-11-24T22:00:00Z",
      "dataset": {"path": str, "examples": int, "sha256": str},
      "generation": {"max_tokens": int, "temperature": float, "seed": int | None},
      "models": {
        "<name>": {                       # e.g. "candidate", "baseline"
          "ref": str,                     # what was evaluated (GGUF path, HF dir, base+adapter, hub id)
          "rougeL": float, "semantic_similarity": float, "bertscore_f1": float, "fact_coverage": float,
          "perplexity": float | None, "latency_p50_s": float, "latency_p95_s": float, "tokens_per_s": float,
          "judge_score": float | None,    # optional LLM-as-judge mean (1-5), None when not run
          "per_category": {"<category>": {"examples": int, "rougeL": float, "semantic_similarity": float,
                                          "bertscore_f1": float, "fact_coverage": float | None,
                                          "perplexity": float | None}},
          "examples": [{"id": str, "category": str, "question": str, "reference": str, "answer": str,
                        "rougeL": float, "semantic_similarity": float, "bertscore_f1": float,
                        "fact_coverage": float | None, "missing_terms": [str], "perplexity": float | None,
                        "latency_s": float, "output_tokens": int, "judge_score": float | None}]
        }
      },
      "candidate": "<name>", "baseline": "<name>" | None,
      "comparison": {"<metric>": {"candidate": float, "baseline": float, "delta": float,
                                  "delta_ci95": [low, high] | None}},  # quality metrics; {} without baseline
      "gate": {"passed": bool, "checks": [{"metric": str, "rule": str, "value": float, "threshold": float,
                                           "passed": bool}]},    # or None when no gate is configured
      "retrieval": None | {"k": int, "queries": int, "recall_at_k": float, "mrr": float,   # hybrid search
                       "modes": {"dense" | "bm25" | "hybrid": {"recall_at_k": float, "mrr": float}},
                       "per_query": [{"query": str, "expected": [str], "retrieved": [str],
                                      "rank": int | None}]}                  # hybrid misses
    }

Both documents are built from the same list of blocks (headings, paragraphs, lists, tables, quotes,
figures), so the Markdown and the HTML always say the same thing; only the HTML carries the plots,
embedded as base64 PNGs so the file stands alone. Numbers show with 3 decimals and ``None`` as "n/a".
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from melancia.data.io import atomic_write_text

SUMMARY_METRICS = (
    "rougeL", "semantic_similarity", "bertscore_f1", "fact_coverage", "perplexity", "judge_score",
    "latency_p50_s", "latency_p95_s", "tokens_per_s",
)
CATEGORY_METRICS = ("rougeL", "semantic_similarity", "bertscore_f1", "fact_coverage", "perplexity")
PLOTTED_CATEGORY_METRICS = ("rougeL", "fact_coverage", "semantic_similarity")
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


def model_names(report: dict[str, Any]) -> list[str]:
    """Candidate first, then the baseline, then any other evaluated model, in report order."""
    first = [n for n in (report.get("candidate"), report.get("baseline")) if n]
    return first + [name for name in report.get("models", {}) if name not in first]


def baseline_name(report: dict[str, Any]) -> str | None:
    """The baseline's name when the report has one with results, else ``None``."""
    name = report.get("baseline")
    return name if name and name in report.get("models", {}) else None


def metric_delta(report: dict[str, Any], metric: str) -> float | None:
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


def example_score(example: dict[str, Any]) -> float:
    """What a win or a loss is measured by: rougeL plus fact coverage (a missing value counts as 0)."""
    return (example.get("rougeL") or 0.0) + (example.get("fact_coverage") or 0.0)


def biggest_changes(report: dict[str, Any], n: int = 5) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``n`` examples the candidate improved most over the baseline, and the ``n`` it made worst.

    Examples are paired by id; each item holds the id, category, question, reference, both answers,
    both scores (rougeL + fact coverage) and their difference. Wins come largest gain first, losses
    largest drop first; unchanged examples are neither. Without a baseline both lists are empty.
    """
    baseline = baseline_name(report)
    if baseline is None:
        return [], []
    baseline_by_id = {e["id"]: e for e in report["models"][baseline].get("examples", [])}
    changes = []
    for ours in report["models"][report["candidate"]].get("examples", []):
        theirs = baseline_by_id.get(ours["id"])
        if theirs is not None:
            changes.append(describe_change(ours, theirs))
    wins = sorted((c for c in changes if c["delta"] > 0), key=lambda c: (-c["delta"], c["id"]))
    losses = sorted((c for c in changes if c["delta"] < 0), key=lambda c: (c["delta"], c["id"]))
    return wins[:n], losses[:n]


def describe_change(candidate: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
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


# ---------------------------------------------------------------- document blocks


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


def build_document(report: dict[str, Any]) -> Document:
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


def settings_section(doc: Document, report: dict[str, Any]) -> None:
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


def role_label(report: dict[str, Any], name: str) -> str:
    """A model's name with its role, e.g. "run-7 (candidate)"."""
    if name == report.get("candidate"):
        return f"{name} (candidate)"
    if name == report.get("baseline"):
        return f"{name} (baseline)"
    return name


def gate_section(doc: Document, report: dict[str, Any]) -> None:
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


def metrics_section(doc: Document, report: dict[str, Any]) -> None:
    candidate = report["candidate"]
    baseline = baseline_name(report)
    doc.add(Heading(2, "Metrics"))
    models = report["models"]
    if baseline is None:
        rows = [[metric, fmt(models[candidate].get(metric))] for metric in SUMMARY_METRICS]
        doc.add(Table(["metric", candidate], rows))
        return
    rows = [[metric, fmt(models[candidate].get(metric)), fmt(models[baseline].get(metric)),
             fmt_delta(metric_delta(report, metric)), delta_interval(report, metric)] for metric in SUMMARY_METRICS]
    doc.add(Table(["metric", f"{candidate} (candidate)", f"{baseline} (baseline)", "delta",
                   "delta 95% CI (paired bootstrap)"], rows))


def delta_interval(report: dict[str, Any], metric: str) -> str:
    interval = ((report.get("comparison") or {}).get(metric) or {}).get("delta_ci95")
    return f"[{fmt_delta(interval[0])}, {fmt_delta(interval[1])}]" if interval else "n/a"


def category_section(doc: Document, report: dict[str, Any]) -> None:
    doc.add(Heading(2, "Per category"))
    rows = []
    for category in categories(report):
        for name in model_names(report):
            scores = report["models"][name].get("per_category", {}).get(category)
            if scores is not None:
                rows.append([category, name, fmt(scores.get("examples")),
                             *(fmt(scores.get(metric)) for metric in CATEGORY_METRICS)])
    doc.add(Table(["category", "model", "examples", *CATEGORY_METRICS], rows))
    doc.add(Figure("categories", "Metrics per category"))


def categories(report: dict[str, Any]) -> list[str]:
    """Every category any model was scored on, sorted."""
    return sorted({c for model in report["models"].values() for c in model.get("per_category", {})})


def changes_section(doc: Document, report: dict[str, Any]) -> None:
    if baseline_name(report) is None:
        return
    wins, losses = biggest_changes(report)
    for title, changes in (("Biggest wins", wins), ("Biggest losses", losses)):
        doc.add(Heading(2, f"{title} (rougeL + fact coverage, candidate vs baseline)"))
        if not changes:
            doc.add(Paragraph("none"))
        for change in changes:
            change_blocks(doc, report, change)


def change_blocks(doc: Document, report: dict[str, Any], change: dict[str, Any]) -> None:
    doc.add(
        Heading(3, f"{change['id']} ({fmt(change['category'])}): {fmt_delta(change['delta'])}"),
        Paragraph(f"Question: {truncate(change['question'])}"),
        Paragraph(f"Reference: {truncate(change['reference'])}"),
        Quote(f"{report['candidate']} (candidate, score {fmt(change['candidate_score'])})",
              truncate(change["candidate_answer"])),
        Quote(f"{report['baseline']} (baseline, score {fmt(change['baseline_score'])})",
              truncate(change["baseline_answer"])),
    )


def retrieval_section(doc: Document, report: dict[str, Any]) -> None:
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


# ---------------------------------------------------------------- Markdown


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown (no plots: they live in the HTML)."""
    parts = [markdown_block(block) for block in build_document(report).blocks if not isinstance(block, Figure)]
    return "\n\n".join(parts) + "\n"


def markdown_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {block.text}"
    if isinstance(block, Paragraph):
        return f"**{block.text}**" if block.tone else block.text
    if isinstance(block, Bullets):
        return "\n".join(f"- {item}" for item in block.items)
    if isinstance(block, Table):
        return markdown_table(block)
    if isinstance(block, Quote):
        lines = [f"*{block.label}:*", "", *(block.text or MISSING).splitlines()]
        return "\n".join(f"> {line}".rstrip() for line in lines)
    raise TypeError(f"no Markdown for {type(block).__name__}")


def markdown_table(table: Table) -> str:
    lines = [markdown_row(table.headers), "|" + "|".join("---" for _ in table.headers) + "|"]
    return "\n".join(lines + [markdown_row(row) for row in table.rows])


def markdown_row(cells: list[str]) -> str:
    """A table row; pipes and line breaks inside a cell would break the table, so they are neutralised."""
    return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


# ---------------------------------------------------------------- HTML

HTML_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
blockquote { border-left: 4px solid #bbb; margin: 0.5em 0; padding: 0.3em 1em; background: #fafafa;
             white-space: pre-wrap; }
.label { font-style: italic; color: #555; }
.pass { color: #137333; font-weight: bold; font-size: 1.3em; }
.fail { color: #b3261e; font-weight: bold; font-size: 1.3em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; }
"""


def render_html(report: dict[str, Any], plots: dict[str, bytes]) -> str:
    """The report as one self-contained HTML page; ``plots`` maps figure keys to PNG bytes.

    The keys used are ``"categories"`` and ``"latency"``; a missing key simply leaves its figure out.
    Every piece of text from the report is escaped.
    """
    document = build_document(report)
    title = html.escape(document.blocks[0].text) if document.blocks else "Evaluation report"
    body = "\n".join(html_block(block, plots) for block in document.blocks)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{title}</title>\n<style>{HTML_STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def html_block(block: Block, plots: dict[str, bytes]) -> str:
    esc = html.escape
    if isinstance(block, Heading):
        return f"<h{block.level}>{esc(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        css = f' class="{block.tone}"' if block.tone else ""
        return f"<p{css}>{esc(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{esc(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Table):
        return html_table(block)
    if isinstance(block, Quote):
        return f'<p class="label">{esc(block.label)}:</p>\n<blockquote>{esc(block.text or MISSING)}</blockquote>'
    if isinstance(block, Figure):
        return html_figure(block, plots.get(block.key))
    raise TypeError(f"no HTML for {type(block).__name__}")


def html_table(table: Table) -> str:
    head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in table.headers) + "</tr>"
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    return f"<table>\n<thead>{head}</thead>\n<tbody>{rows}</tbody>\n</table>"


def html_figure(figure: Figure, png: bytes | None) -> str:
    if not png:
        return ""
    source = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    caption = html.escape(figure.caption)
    return f'<figure><img src="{source}" alt="{caption}"><figcaption>{caption}</figcaption></figure>'


# ---------------------------------------------------------------- plots

PNG_DPI = 100


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def model_colours(report: dict[str, Any]) -> dict[str, Any]:
    """One colour per model, the same in every plot."""
    palette = pyplot().get_cmap("tab10")
    return {name: palette(i % 10) for i, name in enumerate(model_names(report))}


def figure_png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=PNG_DPI)
    pyplot().close(fig)
    return buffer.getvalue()


def plot_category_metrics(report: dict[str, Any]) -> bytes:
    """PNG: for rougeL, fact coverage and semantic similarity, bars per category, one colour per model."""
    import numpy as np

    plt = pyplot()
    names, colours, cats = model_names(report), model_colours(report), categories(report)
    fig, axes = plt.subplots(1, len(PLOTTED_CATEGORY_METRICS), figsize=(5 * len(PLOTTED_CATEGORY_METRICS), 4.5),
                             squeeze=False)
    width = 0.8 / max(1, len(names))
    positions = np.arange(len(cats))
    for ax, metric in zip(axes[0], PLOTTED_CATEGORY_METRICS, strict=True):
        for i, name in enumerate(names):
            per_category = report["models"][name].get("per_category", {})
            heights = [category_value(per_category, category, metric) for category in cats]
            ax.bar(positions + i * width, heights, width, label=name, color=colours[name])
        ax.set_xticks(positions + width * (len(names) - 1) / 2, cats, rotation=30, ha="right")
        ax.set(title=metric, ylim=(0, 1.05))
    axes[0][0].set_ylabel("score")
    axes[0][0].legend()
    return figure_png(fig)


def category_value(per_category: dict[str, Any], category: str, metric: str) -> float:
    """A category's score, ``nan`` (no bar) when the model has none."""
    value = per_category.get(category, {}).get(metric)
    return float("nan") if value is None else float(value)


def plot_latency(report: dict[str, Any]) -> bytes:
    """PNG: box plot of per-example latency (seconds), one box per model."""
    plt = pyplot()
    colours = model_colours(report)
    series = {name: [e["latency_s"] for e in report["models"][name].get("examples", [])
                     if e.get("latency_s") is not None] for name in model_names(report)}
    series = {name: values for name, values in series.items() if values}
    fig, ax = plt.subplots(figsize=(max(5, 2.5 * len(series) + 2), 4))
    if not series:
        ax.text(0.5, 0.5, "no latency measured", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return figure_png(fig)
    boxes = ax.boxplot(list(series.values()), patch_artist=True, medianprops={"color": "black"})
    ax.set_xticks(range(1, len(series) + 1), list(series))
    for patch, name in zip(boxes["boxes"], series, strict=True):
        patch.set_facecolor(colours[name])
        patch.set_alpha(0.6)
    ax.set(title="Latency per example", ylabel="seconds")
    return figure_png(fig)


# ---------------------------------------------------------------- files


def write_reports(report: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """``report.json``, ``report.md`` and ``report.html`` in ``out_dir``, each written atomically.

    The JSON goes last, so its presence means the whole set is complete. Returns the three paths.
    """
    out_dir = Path(out_dir)
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md", "html": out_dir / "report.html"}
    plots = {"categories": plot_category_metrics(report), "latency": plot_latency(report)}
    atomic_write_text(paths["md"], render_markdown(report))
    atomic_write_text(paths["html"], render_html(report, plots))
    atomic_write_text(paths["json"], json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    return paths
