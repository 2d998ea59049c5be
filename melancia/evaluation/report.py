"""Evaluation reports: one computed :class:`~melancia.evaluation.schema.Report` written as three files.

``report.json`` is the report itself (its shape: :mod:`melancia.evaluation.schema`); ``report.md`` and
``report.html`` are the same document (:mod:`melancia.evaluation.document`) rendered by
:mod:`melancia.evaluation.render`, the HTML with the plots of :mod:`melancia.evaluation.plots`.
"""

from __future__ import annotations

import json
from pathlib import Path

from melancia.data.io import atomic_write_text
from melancia.evaluation.plots import plot_category_metrics, plot_latency
from melancia.evaluation.render import render_html, render_markdown
from melancia.evaluation.schema import Report


def write_reports(report: Report, out_dir: Path) -> dict[str, Path]:
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
