"""The console summary of a data stage run (a rich table on the terminal)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from melancia.data.pipeline import DataSummary


def print_summary(summary: DataSummary, console: Console) -> None:
    categories = sorted({c for s in summary.stats.values() for c in s["by_category"]})
    table = Table(title=f"Dataset summary ({summary.out_dir})")
    table.add_column("category")
    for name in summary.stats:
        table.add_column(name, justify="right")
    for category in categories:
        table.add_row(category, *(str(s["by_category"].get(category, 0)) for s in summary.stats.values()))
    table.add_section()
    table.add_row("examples", *(str(s["examples"]) for s in summary.stats.values()))
    table.add_row("multi-turn", *(str(s["multi_turn"]) for s in summary.stats.values()))
    table.add_row("tokens p50 / p95", *(f"{s['tokens']['p50']} / {s['tokens']['p95']}" if "tokens" in s else "-"
                                        for s in summary.stats.values()))
    table.add_row("tokens total", *(str(s.get("tokens", {}).get("total", 0)) for s in summary.stats.values()))
    console.print(table)
    sources = sorted({src for s in summary.stats.values() for src in s["by_source"]})
    console.print("sources: " + ", ".join(
        f"{src}={sum(s['by_source'].get(src, 0) for s in summary.stats.values())}" for src in sources))
    kinds = {k: sum(d.kind == k for d in summary.removed) for k in ("exact", "near", "leak")}
    console.print(f"removed: {kinds['exact']} exact duplicates, {kinds['near']} near duplicates, "
                  f"{kinds['leak']} leaking into held-out; rejected rows: {len(summary.rejected)}")
    console.print(f"wrote {', '.join(str(summary.path(n).name) for n in summary.splits)}, stats.json, "
                  f"stats.png, manifest.json in {summary.out_dir}")
