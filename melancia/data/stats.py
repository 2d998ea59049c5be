"""``melancia data stats``: what a dataset holds, as JSON and as a PNG histogram."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from melancia.data import schema
from melancia.data.io import atomic_write_bytes, atomic_write_text
from melancia.data.tokens import TokenCounter


def describe(records: list[dict[str, Any]], count_tokens: TokenCounter | None = None) -> dict[str, Any]:
    """Counts per category and source, turn counts and the token-length distribution."""
    out: dict[str, Any] = {
        "examples": len(records),
        "multi_turn": sum(1 for r in records if sum(m["role"] == "user" for m in r["messages"]) > 1),
        "by_category": dict(sorted(Counter(schema.category(r) for r in records).items())),
        "by_source": dict(sorted(Counter(schema.source(r) for r in records).items())),
        "with_must_include": sum(1 for r in records if r["metadata"].get("must_include")),
    }
    if count_tokens is not None and records:
        lengths = np.array([count_tokens(r["messages"]) for r in records])
        out["tokens"] = {
            "total": int(lengths.sum()), "mean": round(float(lengths.mean()), 1),
            "min": int(lengths.min()), "p50": int(np.percentile(lengths, 50)),
            "p90": int(np.percentile(lengths, 90)), "p95": int(np.percentile(lengths, 95)),
            "max": int(lengths.max()), "lengths": lengths.tolist(),
        }
    return out


def plot(splits: dict[str, dict[str, Any]], path: Path) -> None:
    """Token-length histogram per split and examples per category, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, stats in splits.items():
        lengths = stats.get("tokens", {}).get("lengths")
        if lengths:
            left.hist(lengths, bins=30, alpha=0.6, label=f"{name} (n={len(lengths)})")
    left.set(title="Example length (tokens, chat template)", xlabel="tokens", ylabel="examples")
    left.legend()
    categories = sorted({c for s in splits.values() for c in s["by_category"]})
    width = 0.8 / max(1, len(splits))
    for i, (name, stats) in enumerate(splits.items()):
        xs = np.arange(len(categories)) + i * width
        right.bar(xs, [stats["by_category"].get(c, 0) for c in categories], width, label=name)
    right.set_xticks(np.arange(len(categories)) + width * (len(splits) - 1) / 2, categories, rotation=30, ha="right")
    right.set(title="Examples per category", ylabel="examples")
    right.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def without_lengths(stats: dict[str, Any]) -> dict[str, Any]:
    """The stats minus the raw per-example lengths (for printing)."""
    tokens = {k: v for k, v in stats.get("tokens", {}).items() if k != "lengths"}
    return {**stats, **({"tokens": tokens} if tokens else {})}


def write(splits: dict[str, dict[str, Any]], out_dir: Path) -> dict[str, dict[str, Any]]:
    """``stats.json`` (without raw lengths) and ``stats.png`` in ``out_dir``; returns what was written."""
    printable = {name: without_lengths(s) for name, s in splits.items()}
    atomic_write_text(out_dir / "stats.json", json.dumps(printable, ensure_ascii=False, indent=2) + "\n")
    plot(splits, out_dir / "stats.png")
    return printable
