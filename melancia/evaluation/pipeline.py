"""One evaluation from start to verdict: evaluate, write the reports, print, record in MLflow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from melancia.evaluation.config import EvalConfig
from melancia.evaluation.promotion import record_evaluation, verdict
from melancia.evaluation.report import write_reports
from melancia.evaluation.metric_registry import METRIC_NAMES
from melancia.evaluation.runner import evaluate
from melancia.evaluation.schema import Report
from melancia.settings import get_settings


@dataclass
class EvalOutcome:
    report: Report
    files: dict[str, Path]
    verdict: str  # passed | failed | none
    eval_run_id: str


def run_evaluation(config: EvalConfig, candidate: str, baseline: str | None = None, *, out_dir: Path | None = None,
                   console: Console | None = None) -> EvalOutcome:
    console = console or Console()
    report = evaluate(config, candidate, baseline, console=console)
    out_dir = out_dir or get_settings().paths.reports / f"eval-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    files = write_reports(report, out_dir)
    print_comparison(report, console)
    run_id = record_evaluation(report, files, config, candidate)
    console.print(f"reports: {files['md']} {files['html']}")
    return EvalOutcome(report, files, verdict(report), run_id)


def print_comparison(report: Report, console: Console) -> None:
    """The side-by-side metric table and the gate's verdict."""
    models = report["models"]
    table = Table(title=f"evaluation on {report['dataset']['examples']} examples", title_justify="left")
    table.add_column("metric")
    for name in models:
        table.add_column(name, justify="right")
    if report.get("baseline"):
        table.add_column("delta", justify="right")
        table.add_column("delta 95% CI", justify="right")
    for metric in METRIC_NAMES:
        values = [models[name].get(metric) for name in models]
        if all(v is None for v in values):
            continue
        row = [metric, *(_fmt(v) for v in values)]
        if report.get("baseline"):
            compared = report["comparison"][metric]
            interval = compared.get("delta_ci95")
            row += [_fmt(compared["delta"], signed=True),
                    f"[{interval[0]:+.3f}, {interval[1]:+.3f}]" if interval else ""]
        table.add_row(*row)
    console.print(table)
    gate = report.get("gate")
    if gate is None:
        console.print("gate: none configured")
        return
    for check in gate["checks"]:
        mark = "[green]pass[/]" if check["passed"] else "[red]FAIL[/]"
        signed = " - baseline" in check["rule"]
        console.print(f"  {mark} {check['rule']} (value {_fmt(check['value'], signed=signed)})")
    console.print("gate: [bold green]PASSED" if gate["passed"] else "gate: [bold red]FAILED")


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.3f}" if signed else f"{value:.3f}"
