"""Retrieval quality on a labelled query set: recall@k and MRR for dense, BM25 and hybrid search.

Labels are document ids (corpus file stems). A query's recall@k is the share of its relevant
documents found among the documents of the top-k chunks; its reciprocal rank is 1 / the rank of the
first chunk from a relevant document (0 when none is in the top k).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import NotRequired, TypedDict

from melancia.data.io import DataError, atomic_write_text, load_examples
from melancia.retrieval.index import KnowledgeIndex, Mode
from melancia.retrieval.subject import QUESTION_TYPES, QuestionType, read_question

MODES: tuple[Mode, ...] = ("dense", "bm25", "hybrid")


class ModeScores(TypedDict):
    recall_at_k: float
    mrr: float


class TypeScores(TypedDict):
    queries: int
    recall_at_k: float
    mrr: float


class QueryResult(TypedDict):
    """One labelled query as a mode answered it."""

    id: str
    query: str
    type: QuestionType
    expected: list[str]
    retrieved: list[str]
    rank: int | None
    recall: float
    reciprocal_rank: float


class RetrievalResult(TypedDict):
    """recall@k and MRR of every mode; the headline numbers are hybrid search's."""

    k: int
    queries: int
    recall_at_k: float
    mrr: float
    modes: dict[str, ModeScores]
    by_type: dict[str, TypeScores]
    """Hybrid search by question type (definition, calculation, other: :mod:`~melancia.retrieval.subject`)."""
    per_query: list[QueryResult]
    """Hybrid search's misses (recall below 1)."""
    per_mode_queries: NotRequired[dict[str, list[QueryResult]]]
    """Every query of every mode (left out of the evaluation report)."""


@dataclass
class LabelledQuery:
    id: str
    query: str
    relevant: list[str]
    category: str | None = None


def load_queries(path: Path) -> list[LabelledQuery]:
    queries = []
    for number, record in enumerate(load_examples(path), start=1):
        if not isinstance(record.get("query"), str) or not record.get("relevant"):
            raise DataError(f"{path}:{number}: expected fields 'query' (text) and 'relevant' (document ids)")
        queries.append(LabelledQuery(str(record.get("id", number)), record["query"], list(record["relevant"]),
                                     record.get("category")))
    if not queries:
        raise DataError(f"{path}: no queries")
    return queries


def score_ranking(retrieved_docs: list[str], relevant: list[str]) -> tuple[float, float, int | None]:
    """(recall, reciprocal rank, rank of the first relevant chunk) of one ranked list of doc ids."""
    found = set(retrieved_docs) & set(relevant)
    rank = next((i for i, doc in enumerate(retrieved_docs, start=1) if doc in relevant), None)
    return len(found) / len(set(relevant)), (1.0 / rank if rank else 0.0), rank


def evaluate_retrieval(index: KnowledgeIndex, queries: list[LabelledQuery], k: int = 5) -> RetrievalResult:
    """Per mode: mean recall@k and MRR, with per-query detail (the report's ``retrieval`` section)."""
    modes = {}
    for mode in MODES:
        rows: list[QueryResult] = []
        for query in queries:
            docs = [hit.doc_id for hit in index.query(query.query, k, mode=mode)]
            recall, reciprocal, rank = score_ranking(docs, query.relevant)
            rows.append({"id": query.id, "query": query.query, "type": read_question(query.query).type,
                         "expected": query.relevant, "retrieved": docs,
                         "rank": rank, "recall": recall, "reciprocal_rank": reciprocal})
        modes[mode] = {"recall_at_k": sum(r["recall"] for r in rows) / len(rows),
                       "mrr": sum(r["reciprocal_rank"] for r in rows) / len(rows), "per_query": rows}
    best = modes["hybrid"]
    return {"k": k, "queries": len(queries), "recall_at_k": best["recall_at_k"], "mrr": best["mrr"],
            "modes": {m: {"recall_at_k": v["recall_at_k"], "mrr": v["mrr"]} for m, v in modes.items()},
            "by_type": _by_type(best["per_query"]),
            "per_query": [r for r in best["per_query"] if r["recall"] < 1.0],
            "per_mode_queries": {m: v["per_query"] for m, v in modes.items()}}


def _by_type(rows: list[QueryResult]) -> dict[str, TypeScores]:
    by_type: dict[str, TypeScores] = {}
    for kind in QUESTION_TYPES:
        of_kind = [r for r in rows if r["type"] == kind]
        if of_kind:
            by_type[kind] = {"queries": len(of_kind), "recall_at_k": sum(r["recall"] for r in of_kind) / len(of_kind),
                             "mrr": sum(r["reciprocal_rank"] for r in of_kind) / len(of_kind)}
    return by_type


def retrieval_markdown(result: RetrievalResult) -> str:
    """A short report: recall@k and MRR per mode, then the queries hybrid search did not fully answer."""
    k = result["k"]
    lines = [f"# Retrieval evaluation ({result['queries']} queries, k={k})", "",
             f"| mode | recall@{k} | MRR |", "|---|---|---|"]
    lines += [f"| {mode} | {row['recall_at_k']:.3f} | {row['mrr']:.3f} |" for mode, row in result["modes"].items()]
    lines += ["", "Hybrid search by question type:", "", f"| type | queries | recall@{k} | MRR |", "|---|---|---|---|"]
    lines += [f"| {kind} | {row['queries']} | {row['recall_at_k']:.3f} | {row['mrr']:.3f} |"
              for kind, row in result["by_type"].items()]
    misses = result["per_query"]
    lines += ["", f"## Hybrid misses ({len(misses)})", ""]
    lines += [f"- {m['id']} `{m['query']}`: expected {', '.join(m['expected'])}; got "
              f"{', '.join(dict.fromkeys(m['retrieved'])) or 'nothing'}" for m in misses]
    return "\n".join(lines) + "\n"


def write_retrieval_report(result: RetrievalResult, out_dir: Path) -> dict[str, Path]:
    """``retrieval.json`` and ``retrieval.md`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"json": out_dir / "retrieval.json", "md": out_dir / "retrieval.md"}
    atomic_write_text(files["md"], retrieval_markdown(result))
    atomic_write_text(files["json"], json.dumps({"schema_version": 1, "retrieval": result}, indent=1,
                                                ensure_ascii=False))
    return files
