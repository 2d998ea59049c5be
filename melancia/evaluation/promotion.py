"""Promotion and the choice of baseline, in one place for the CLI, the local run, the Job and the operator.

The rule: **a candidate is compared with the current champion** (the registry version behind the
``champion`` alias), through that version's training run folder, when the registry has one, the
folder is reachable from here and it is not the candidate itself; **otherwise with the candidate's
base model** (the first run of a model, or a champion whose files are elsewhere).
:func:`choose_baseline` applies it; ``melancia run`` and the evaluation Job (which the operator
runs) call it. ``melancia eval`` compares with what ``--baseline`` names.

The verdict is written as tags on the evaluation run, on the candidate's training run and on its
registered model version (``melancia.gate`` = passed | failed | none). :func:`promote` moves the
registry alias to a version only when its ``melancia.gate`` tag says passed, so nothing reaches
production without a passing evaluation; ``melancia promote``, ``melancia run`` and the operator call it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from melancia.errors import MelanciaError
from melancia.evaluation.config import EvalConfig
from melancia.evaluation.metric_registry import METRIC_NAMES
from melancia.evaluation.schema import Report
from melancia.tracking import OUTPUT_DIR_TAG, RunRecord, find_run_record, tracked_run, tracking_uri

GATE_TAG = "melancia.gate"
CHAMPION = "champion"


class PromotionError(MelanciaError, RuntimeError):
    """The version cannot be promoted; the message says why."""


@dataclass(frozen=True)
class Promotion:
    model: str
    version: str
    alias: str
    previous: str | None
    """The version that held the alias before, if any."""

    def describe(self) -> str:
        return (f"{self.model}: {self.alias} -> version {self.version}"
                + (f" (was version {self.previous})" if self.previous else ""))


def verdict(report: Report) -> str:
    gate = report.get("gate")
    return "none" if gate is None else ("passed" if gate["passed"] else "failed")


def _client(uri: str | None) -> Any:
    from mlflow import MlflowClient  # heavy and optional: only promotion and the baseline choice need MLflow

    resolved = tracking_uri(uri)
    return MlflowClient(tracking_uri=resolved, registry_uri=resolved)


def choose_baseline(run: RunRecord, *, alias: str = CHAMPION) -> str:
    """What ``run`` is evaluated against: the champion's run folder, else ``run``'s base model (see above)."""
    if run.registered_model:
        from mlflow.exceptions import MlflowException  # heavy and optional (see _client)

        client = _client(run.tracking_uri)
        try:
            champion = client.get_model_version_by_alias(run.registered_model, alias)
            folder = client.get_run(champion.run_id).data.tags.get(OUTPUT_DIR_TAG)
        except MlflowException:
            folder = None
        if folder and Path(folder).is_dir() and (run.folder is None
                                                 or Path(folder).resolve() != run.folder.resolve()):
            return folder
    return run.base_model


def promote(run: RunRecord, *, alias: str = CHAMPION) -> Promotion:
    """Point ``alias`` at ``run``'s registered version if its evaluation passed the gate."""
    if not run.registered_model or not run.registered_version:
        raise PromotionError(f"run {run.run_name!r} registered no model version; nothing to promote")
    from mlflow.exceptions import MlflowException  # heavy and optional (see _client)

    name, version = run.registered_model, str(run.registered_version)
    client = _client(run.tracking_uri)
    try:
        found = client.get_model_version(name, version)
    except MlflowException:
        raise PromotionError(f"{name} version {version} is not in the registry at "
                             f"{tracking_uri(run.tracking_uri)}") from None
    gate = found.tags.get(GATE_TAG)
    if gate != "passed":
        state = "was never evaluated" if gate is None else f"evaluation gate: {gate}"
        raise PromotionError(f"{name} version {version} cannot become {alias!r}: {state}")
    try:
        previous: str | None = str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        previous = None
    client.set_registered_model_alias(name, alias, version)
    return Promotion(name, version, alias, previous)


def record_evaluation(report: Report, files: dict[str, Path], config: EvalConfig,
                      candidate_ref: str) -> str:
    """Log metrics, reports and the verdict to MLflow; returns the evaluation run id."""
    run = find_run_record(candidate_ref)
    result = verdict(report)
    tags = {"melancia.stage": "eval", GATE_TAG: result, "melancia.candidate": report["models"]["candidate"]["ref"]}
    if run and run.mlflow_run_id:
        tags["melancia.candidate_run_id"] = run.mlflow_run_id
    uri = (run.tracking_uri if run else None) or config.tracking.tracking_uri
    with tracked_run(config.tracking.experiment, "eval", uri=uri, tags=tags) as tracker:
        tracker.log_metrics(_metrics(report), step=0)
        for path in files.values():
            tracker.log_artifact(path, "report")
        if run and run.mlflow_run_id:
            tracker.client.set_tag(run.mlflow_run_id, GATE_TAG, result)
            tracker.client.set_tag(run.mlflow_run_id, "melancia.eval_run_id", tracker.run_id)
        if run and run.registered_model and run.registered_version:
            for key, value in ((GATE_TAG, result), ("melancia.eval_run_id", tracker.run_id)):
                tracker.client.set_model_version_tag(run.registered_model, run.registered_version, key, value)
        return tracker.run_id


def _metrics(report: Report) -> dict[str, float]:
    out = {}
    for name, model in report["models"].items():
        for metric in METRIC_NAMES:
            value = model.get(metric)
            if value is not None and not math.isnan(value):
                out[f"{name}.{metric}"] = value
    for metric, row in report.get("comparison", {}).items():
        if row["delta"] is not None and not math.isnan(row["delta"]):
            out[f"delta.{metric}"] = row["delta"]
    return out
