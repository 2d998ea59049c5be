"""Recording an evaluation in MLflow, and promoting only what passed the gate.

The verdict is written as tags on the evaluation run, on the candidate's training run and on its
registered model version (``melancia.gate`` = passed | failed | none). ``promote`` moves the
registry alias (``champion`` by default) to a version only when its ``melancia.gate`` tag says
passed, so nothing reaches production without a passing evaluation.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from melancia.errors import MelanciaError
from melancia.evaluation.config import EvalConfig
from melancia.evaluation.runner import COMPARED_METRICS

GATE_TAG = "melancia.gate"


class PromotionError(MelanciaError, RuntimeError):
    """The version cannot be promoted; the message says why."""


def verdict(report: dict[str, Any]) -> str:
    gate = report.get("gate")
    return "none" if gate is None else ("passed" if gate["passed"] else "failed")


def candidate_run_info(candidate_ref: str) -> dict[str, Any]:
    """The training run's ``run.json`` when the candidate is a run folder or a file inside one."""
    path = Path(candidate_ref)
    for folder in (path, path.parent, path.parent.parent):
        info = folder / "run.json"
        if info.is_file():
            return json.loads(info.read_text(encoding="utf-8"))
    return {}


def record_evaluation(report: dict[str, Any], files: dict[str, Path], config: EvalConfig,
                      candidate_ref: str) -> str:
    """Log metrics, reports and the verdict to MLflow; returns the evaluation run id."""
    from melancia.tracking import tracked_run

    info = candidate_run_info(candidate_ref)
    result = verdict(report)
    tags = {"melancia.stage": "eval", GATE_TAG: result, "melancia.candidate": report["models"]["candidate"]["ref"]}
    if info.get("mlflow_run_id"):
        tags["melancia.candidate_run_id"] = info["mlflow_run_id"]
    with tracked_run(config.tracking.experiment, "eval", uri=info.get("tracking_uri") or config.tracking.tracking_uri,
                     tags=tags) as tracker:
        tracker.log_metrics(_metrics(report), step=0)
        for path in files.values():
            tracker.log_artifact(path, "report")
        if info.get("mlflow_run_id"):
            tracker.client.set_tag(info["mlflow_run_id"], GATE_TAG, result)
            tracker.client.set_tag(info["mlflow_run_id"], "melancia.eval_run_id", tracker.run_id)
        if info.get("registered_model") and info.get("registered_version"):
            for key, value in ((GATE_TAG, result), ("melancia.eval_run_id", tracker.run_id)):
                tracker.client.set_model_version_tag(info["registered_model"], info["registered_version"], key, value)
        return tracker.run_id


def _metrics(report: dict[str, Any]) -> dict[str, float]:
    out = {}
    for name, model in report["models"].items():
        for metric in COMPARED_METRICS:
            value = model.get(metric)
            if value is not None and not math.isnan(value):
                out[f"{name}.{metric}"] = value
    for metric, row in report.get("comparison", {}).items():
        if row["delta"] is not None and not math.isnan(row["delta"]):
            out[f"delta.{metric}"] = row["delta"]
    return out


def promote(model_name: str, version: str, *, alias: str = "champion", tracking_uri: str | None = None) -> str:
    """Point ``alias`` at ``version`` if its evaluation passed the gate; returns the previous holder."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from melancia.tracking import tracking_uri as resolve_uri

    uri = resolve_uri(tracking_uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        found = client.get_model_version(model_name, version)
    except MlflowException:
        raise PromotionError(f"{model_name} version {version} is not in the registry at {uri}") from None
    gate = found.tags.get(GATE_TAG)
    if gate != "passed":
        state = "was never evaluated" if gate is None else f"evaluation gate: {gate}"
        raise PromotionError(f"{model_name} version {version} cannot become {alias!r}: {state}")
    try:
        previous = str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        previous = None
    client.set_registered_model_alias(model_name, alias, version)
    return previous
