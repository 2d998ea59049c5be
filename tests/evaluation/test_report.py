"""Evaluation report rendering: the three files, the Markdown tables, wins and losses, HTML escaping, plots."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from melancia.evaluation.document import biggest_changes
from melancia.evaluation.metric_registry import METRIC_NAMES, PER_EXAMPLE_METRICS
from melancia.evaluation.plots import plot_category_metrics, plot_latency
from melancia.evaluation.render import render_html, render_markdown
from melancia.evaluation.report import write_reports
from melancia.evaluation.schema import CategoryScores, ExampleResult, Scores

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LONG_ANSWER = "O ACOS é o gasto dividido pela receita. " * 60


def example(id_, category, rouge, facts, answer, latency):
    return {
        "id": id_, "category": category, "question": f"pergunta {id_}?", "reference": f"referência {id_}",
        "answer": answer, "rougeL": rouge, "semantic_similarity": 0.5, "bertscore_f1": 0.6,
        "fact_coverage": facts, "missing_terms": [], "perplexity": None, "latency_s": latency,
        "output_tokens": 40, "judge_score": None,
    }


def category_scores(examples, rouge, facts):
    return {"examples": examples, "rougeL": rouge, "semantic_similarity": 0.5, "bertscore_f1": 0.6,
            "fact_coverage": facts, "perplexity": None}


def model(ref, rouge, facts, perplexity, per_category, examples):
    return {
        "ref": ref, "rougeL": rouge, "semantic_similarity": 0.55, "bertscore_f1": 0.61, "fact_coverage": facts,
        "perplexity": perplexity, "latency_p50_s": 0.8, "latency_p95_s": 1.9, "tokens_per_s": 42.0,
        "judge_score": None, "per_category": per_category, "examples": examples,
    }


@pytest.fixture
def report():
    """Candidate vs baseline over 4 examples: e1 a big win, e2 a small win, e3 a loss, e4 a tie."""
    candidate_examples = [
        example("e1", "metricas", 0.8, 1.0, LONG_ANSWER, 0.7),
        example("e2", "metricas", 0.5, None, "Use <script>alert(1)</script> & veja", 0.9),
        example("e3", "plataformas", 0.3, 0.5, "resposta candidata e3", 1.1),
        example("e4", "plataformas", 0.4, 0.5, "resposta candidata e4", 2.0),
    ]
    baseline_examples = [
        example("e1", "metricas", 0.2, 0.5, "resposta base e1", 1.5),
        example("e2", "metricas", 0.4, 0.0, "resposta base e2", 1.7),
        example("e3", "plataformas", 0.6, 1.0, "resposta base e3", 1.2),
        example("e4", "plataformas", 0.4, 0.5, "resposta base e4", 2.5),
    ]
    return {
        "schema_version": 1,
        "created_at": "2026-11-24T22:00:00Z",
        "dataset": {"path": "data/datasets/eval", "examples": 4, "sha256": "abc123"},
        "generation": {"max_tokens": 256, "temperature": 0.0, "seed": 7},
        "models": {
            "cand": model("runs/r1/gguf/r1.gguf", 0.5, 2 / 3, None,
                          {"metricas": category_scores(2, 0.65, 1.0), "plataformas": category_scores(2, 0.35, 0.5)},
                          candidate_examples),
            "base": model("SmolLM2-135M-Instruct", 0.4, 0.5, 12.0,
                          {"metricas": category_scores(2, 0.3, None), "plataformas": category_scores(2, 0.5, 0.75)},
                          baseline_examples),
        },
        "candidate": "cand",
        "baseline": "base",
        "comparison": {"rougeL": {"candidate": 0.5, "baseline": 0.4, "delta": 0.1}},
        "gate": {"passed": False, "checks": [
            {"metric": "rougeL", "rule": ">= baseline - 0.02", "value": 0.5, "threshold": 0.38, "passed": True},
            {"metric": "fact_coverage", "rule": ">=", "value": 2 / 3, "threshold": 0.7, "passed": False},
        ]},
        "retrieval": {"k": 3, "queries": 2, "recall_at_k": 0.5, "mrr": 0.25, "per_query": [
            {"query": "o que é ACOS", "expected": ["acos.md"], "retrieved": ["roas.md", "tacos.md", "acos.md"],
             "rank": 3},
            {"query": "Magalu Ads", "expected": ["magalu.md"], "retrieved": ["shopee.md"], "rank": None},
        ]},
    }


@pytest.fixture
def single_model_report(report):
    """Only the candidate: no baseline, no comparison, no gate, no retrieval."""
    single = copy.deepcopy(report)
    del single["models"]["base"]
    single.update(baseline=None, comparison={}, gate=None, retrieval=None)
    return single


def test_write_reports_writes_three_files_and_the_json_round_trips(report, tmp_path: Path):
    paths = write_reports(report, tmp_path / "out")
    assert set(paths) == {"json", "md", "html"}
    assert all(path.is_file() for path in paths.values())
    assert json.loads(paths["json"].read_text(encoding="utf-8")) == report
    assert paths["md"].read_text(encoding="utf-8") == render_markdown(report)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_markdown_metric_table_has_both_models_and_deltas(report):
    markdown = render_markdown(report)
    assert "| metric | cand (candidate) | base (baseline) | delta |" in markdown
    assert "| rougeL | 0.500 | 0.400 | +0.100 |" in markdown
    assert "| fact_coverage | 0.667 | 0.500 | +0.167 |" in markdown  # computed: not in "comparison"
    assert "| perplexity | n/a | 12.000 | n/a |" in markdown
    assert "| tokens_per_s | 42.000 | 42.000 | +0.000 |" in markdown


def test_markdown_setup_gate_categories_and_retrieval(report):
    markdown = render_markdown(report)
    assert "data/datasets/eval (4 examples, sha256 abc123)" in markdown
    assert "max_tokens 256, temperature 0.000, seed 7" in markdown
    assert "cand (candidate): runs/r1/gguf/r1.gguf" in markdown
    assert "**FAILED**" in markdown
    assert "| pass | rougeL | >= baseline - 0.02 | 0.500 | 0.380 |" in markdown
    assert "| FAIL | fact_coverage | >= | 0.667 | 0.700 |" in markdown
    assert "| metricas | cand | 2 | 0.650 | 0.500 | 0.600 | 1.000 | n/a |" in markdown
    assert "| metricas | base | 2 | 0.300 | 0.500 | 0.600 | n/a | n/a |" in markdown
    assert "recall@k: 0.500" in markdown and "MRR: 0.250" in markdown
    assert "| o que é ACOS | acos.md | roas.md, tacos.md, acos.md | 3 |" in markdown
    assert "| Magalu Ads | magalu.md | shopee.md | n/a |" in markdown


def test_biggest_changes_orders_wins_and_losses(report):
    wins, losses = biggest_changes(report)
    assert [w["id"] for w in wins] == ["e1", "e2"]
    assert [item["id"] for item in losses] == ["e3"]  # e4 is a tie: neither
    assert wins[0]["candidate_score"] == pytest.approx(1.8)
    assert wins[0]["baseline_score"] == pytest.approx(0.7)
    assert wins[0]["delta"] == pytest.approx(1.1)
    assert wins[1]["candidate_score"] == pytest.approx(0.5)  # missing fact coverage counts as 0
    assert losses[0]["delta"] == pytest.approx(-0.8)
    assert losses[0]["candidate_answer"] == "resposta candidata e3"
    assert losses[0]["baseline_answer"] == "resposta base e3"
    assert losses[0]["question"] == "pergunta e3?" and losses[0]["reference"] == "referência e3"
    assert [w["id"] for w in biggest_changes(report, n=1)[0]] == ["e1"]


def test_markdown_shows_wins_then_losses_with_quoted_truncated_answers(report):
    markdown = render_markdown(report)
    wins_at, losses_at = markdown.index("## Biggest wins"), markdown.index("## Biggest losses")
    assert wins_at < markdown.index("### e1 (metricas): +1.100") < markdown.index("### e2") < losses_at
    assert losses_at < markdown.index("### e3 (plataformas): -0.800")
    assert "### e4" not in markdown
    assert "Question: pergunta e1?" in markdown and "Reference: referência e1" in markdown
    assert "> resposta base e1" in markdown
    assert "> resposta candidata e3" in markdown
    quoted_long = next(line for line in markdown.splitlines() if line.startswith("> O ACOS"))
    assert len(quoted_long) < 620 and quoted_long.endswith("…")


def test_html_escapes_text_and_embeds_both_plots(report):
    page = render_html(report, {"categories": plot_category_metrics(report), "latency": plot_latency(report)})
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; veja" in page
    assert page.count('src="data:image/png;base64,iVBORw0KGgo') == 2
    assert 'class="fail">FAILED<' in page
    assert "<td>+0.100</td>" in page
    assert "Retrieval" in page


def test_plots_are_png(report, single_model_report):
    for data in (plot_category_metrics(report), plot_latency(report), plot_latency(single_model_report)):
        assert data.startswith(PNG_SIGNATURE)


def test_single_model_without_gate_or_retrieval(single_model_report, tmp_path: Path):
    markdown = render_markdown(single_model_report)
    assert "| metric | cand |" in markdown
    assert "| rougeL | 0.500 |" in markdown
    assert "delta" not in markdown
    assert "no gate" in markdown
    assert "Biggest" not in markdown and "Retrieval" not in markdown
    assert biggest_changes(single_model_report) == ([], [])
    paths = write_reports(single_model_report, tmp_path)
    html_page = paths["html"].read_text(encoding="utf-8")
    assert html_page.count("data:image/png;base64,") == 2
    assert "<p>no gate</p>" in html_page


def test_the_report_schema_has_a_field_for_every_metric_of_the_registry():
    assert set(Scores.__annotations__) == set(METRIC_NAMES)
    per_example = set(PER_EXAMPLE_METRICS)
    assert per_example <= set(ExampleResult.__annotations__)
    assert per_example <= set(CategoryScores.__annotations__)
