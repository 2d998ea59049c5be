"""The report's plots as PNG bytes: scores per category, and latency per example, one colour per model.

Drawn with matplotlib's object-oriented API on a ``Figure`` of its own (no pyplot, no display, no
global backend), so plotting is safe from any thread.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from melancia.evaluation.document import categories, model_names
from melancia.evaluation.metric_registry import PLOTTED_METRICS
from melancia.evaluation.schema import Report

PNG_DPI = 100


def model_colours(report: Report) -> dict[str, Any]:
    """One colour per model, the same in every plot."""
    palette = colormaps["tab10"]
    return {name: palette(i % 10) for i, name in enumerate(model_names(report))}


def figure_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=PNG_DPI)
    return buffer.getvalue()


def plot_category_metrics(report: Report) -> bytes:
    """PNG: for each plotted metric of the registry, bars per category, one colour per model."""
    names, colours, cats = model_names(report), model_colours(report), categories(report)
    fig = Figure(figsize=(5 * len(PLOTTED_METRICS), 4.5))
    axes = fig.subplots(1, len(PLOTTED_METRICS), squeeze=False)
    width = 0.8 / max(1, len(names))
    positions = np.arange(len(cats))
    for ax, metric in zip(axes[0], PLOTTED_METRICS, strict=True):
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


def plot_latency(report: Report) -> bytes:
    """PNG: box plot of per-example latency (seconds), one box per model."""
    colours = model_colours(report)
    series = {name: [e["latency_s"] for e in report["models"][name].get("examples", [])
                     if e.get("latency_s") is not None] for name in model_names(report)}
    series = {name: values for name, values in series.items() if values}
    fig = Figure(figsize=(max(5, 2.5 * len(series) + 2), 4))
    ax = fig.subplots()
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
