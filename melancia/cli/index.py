"""``melancia index``: build, update, query, describe and evaluate the knowledge index (ChromaDB + BM25)
in an index folder, embedded or against a Chroma server. The index and its evaluation are imported inside
the commands, so ``melancia --help`` does not load Chroma."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from melancia.cli.common import out, user_errors

index_app = typer.Typer(help="Build, update, query and evaluate the knowledge index (ChromaDB + BM25).",
                        no_args_is_help=True)

DocsOption = Annotated[Path, typer.Option("--docs", help="Folder of Markdown/HTML/text documents.")]
IndexDirOption = Annotated[Path | None, typer.Option("--dir", help="Index folder (default MELANCIA_HOME/index).")]
ChromaOption = Annotated[str | None, typer.Option("--chroma-url", help="Chroma server URL (default: embedded; "
                                                                      "env MELANCIA_CHROMA_URL).")]


def _index(directory: Path | None, chroma_url: str | None) -> Any:
    from melancia.retrieval.index import KnowledgeIndex
    from melancia.settings import get_settings

    return KnowledgeIndex(directory, chroma_url=chroma_url or get_settings().chroma_url)


def _print_update(summary: Any, verb: str) -> None:
    out.print(f"{verb}: {len(summary.added)} added, {len(summary.changed)} changed, {len(summary.removed)} removed, "
              f"{len(summary.unchanged)} unchanged documents; {summary.chunks} chunks")


@index_app.command("build")
@user_errors
def index_build(docs: DocsOption = Path("data/corpus"), directory: IndexDirOption = None,
                chroma_url: ChromaOption = None) -> None:
    """Index a folder of documents from scratch (dense + BM25)."""
    _print_update(_index(directory, chroma_url).build(docs), "built")


@index_app.command("update")
@user_errors
def index_update(docs: DocsOption = Path("data/corpus"), directory: IndexDirOption = None,
                 chroma_url: ChromaOption = None) -> None:
    """Add new, replace changed and remove deleted documents; unchanged ones are skipped."""
    _print_update(_index(directory, chroma_url).update(docs), "updated")


@index_app.command("query")
@user_errors
def index_query(text: Annotated[str, typer.Argument(help="The question.")],
                k: Annotated[int, typer.Option("-k", help="How many chunks.")] = 5,
                mode: Annotated[str, typer.Option(help="hybrid | dense | bm25")] = "hybrid",
                category: Annotated[str | None, typer.Option(help="Only chunks of this category.")] = None,
                directory: IndexDirOption = None, chroma_url: ChromaOption = None,
                as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The best chunks for a question, with their sources for citation."""
    from dataclasses import asdict

    from melancia.config import ConfigError

    if mode not in ("hybrid", "dense", "bm25"):
        raise ConfigError(f"--mode: expected hybrid, dense or bm25, got {mode!r}")
    hits = _index(directory, chroma_url).query(text, k, mode=mode, category=category)  # type: ignore[arg-type]
    if as_json:
        out.print_json(json.dumps([{**asdict(h), "citation": h.citation} for h in hits], ensure_ascii=False))
        return
    for hit in hits:
        out.print(f"[bold]{hit.rank}. {hit.citation}[/] ({hit.doc_id}, {hit.category}, score {hit.score:.4f})")
        out.print(f"   {hit.text[:300]}", highlight=False)


@index_app.command("stats")
@user_errors
def index_stats(directory: IndexDirOption = None, chroma_url: ChromaOption = None) -> None:
    """Documents, chunks and categories in the index."""
    out.print_json(json.dumps(_index(directory, chroma_url).stats(), ensure_ascii=False))


@index_app.command("eval")
@user_errors
def index_eval(queries: Annotated[Path, typer.Option(help="Labelled queries (JSONL: query, relevant doc ids).")]
               = Path("data/retrieval/queries.jsonl"),
               k: Annotated[int, typer.Option("-k", help="Cut-off for recall and MRR.")] = 5,
               out_dir: Annotated[Path | None, typer.Option("--out", help="Report folder.")] = None,
               directory: IndexDirOption = None, chroma_url: ChromaOption = None) -> None:
    """Recall@k and MRR of dense, BM25 and hybrid search on a labelled query set."""
    from melancia.retrieval.evaluation import evaluate_retrieval, load_queries, write_retrieval_report
    from melancia.settings import get_settings

    result = evaluate_retrieval(_index(directory, chroma_url), load_queries(queries), k)
    files = write_retrieval_report(result, out_dir or get_settings().paths.reports / "retrieval")
    for mode, row in result["modes"].items():
        out.print(f"{mode:7s} recall@{k} {row['recall_at_k']:.3f}  MRR {row['mrr']:.3f}")
    for kind, row in result["by_type"].items():
        out.print(f"hybrid, {kind} questions ({row['queries']}): "
                  f"recall@{k} {row['recall_at_k']:.3f}  MRR {row['mrr']:.3f}")
    out.print(f"report: {files['md']}")
