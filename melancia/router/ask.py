"""``melancia ask``: one question through the router, the answer streamed to the terminal."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from melancia.router.config import load_router_config
from melancia.router.loading import build_router, open_index
from melancia.router.router import Answer, NoProviderAvailable, Query, Router


def ask_and_print(question: str, config_path: Path, overrides: list[str], *, tier: str | None, user_id: str | None,
                  max_tokens: int | None, as_json: bool, out: Console, err: Console) -> int:
    """Stream the answer to ``out``, then sources and routing; returns the exit code (1: nobody answered)."""
    config = load_router_config(config_path, overrides)
    index = open_index(config) if config.retrieval.enabled else None
    router = build_router(config, index=index, load=False)
    query = Query(question, tier=tier, user_id=user_id, max_tokens=max_tokens)
    try:
        if as_json:
            try:
                out.print_json(json.dumps(router.answer(query).as_dict(), ensure_ascii=False))
            except NoProviderAvailable as exc:
                err.print(f"[bold red]error:[/] {exc}", highlight=False)
                return 1
            return 0
        return _stream(router, query, out, err)
    finally:
        router.close()


def _stream(router: Router, query: Query, out: Console, err: Console) -> int:
    answer: Answer | None = None
    for event in router.stream(query):
        if event.kind == "token":
            out.print(event.data, end="", highlight=False, markup=False)
        elif event.kind == "done":
            answer = event.data
        elif event.kind == "error":
            out.print()
            err.print(f"[bold red]error:[/] {event.data}", highlight=False)
            return 1
    assert answer is not None
    out.print()
    if answer.sources:
        out.print("\n[bold]Fontes[/]")
        for source in answer.sources:
            heading = f" > {source.heading}" if source.heading and source.heading != source.title else ""
            out.print(f"  {source.rank}. {source.title}{heading} ({source.source})", highlight=False)
    cost = f", US$ {answer.estimated_cost:.6f}" if answer.estimated_cost else ""
    err.print(f"[dim]{answer.provider} / {answer.model}: {answer.routing_reason}; "
              f"{answer.input_tokens}+{answer.output_tokens} tokens{cost}, {answer.latency_seconds:.2f} s[/]",
              highlight=False)
    return 0
