"""``melancia run``: the local pipeline on the embedded defaults, without a cluster.

The stages run as local processes in order; each stage is the same library call a Kubernetes Job
makes in the cluster path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console

from melancia.config import DataConfig
from melancia.data.pipeline import DataSummary, build_datasets
from melancia.data.report import print_summary


@dataclass
class RunConfig:
    """Configs of every stage of a local run."""

    data: DataConfig = field(default_factory=DataConfig)
    """The data stage (see configs/data/default.yaml)."""


def run_local(config: RunConfig, *, allow_rejects: bool = False, console: Console | None = None) -> DataSummary:
    console = console or Console()
    console.rule("[bold]1. data: build, validate, dedupe, split")
    summary = build_datasets(config.data, allow_rejects=allow_rejects)
    print_summary(summary, console)
    return summary
