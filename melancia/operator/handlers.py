"""kopf handlers: each TrainingRun is reconciled on creation, on resume and every few seconds.

The handler observes the cluster, asks :func:`reconcile` what to do and applies the actions in order:
Jobs, promotion (MLflow alias, then the InferenceService), status (phase, device, conditions with
reasons), events. An error raises ``kopf.TemporaryError`` so kopf retries with backoff, and its
one-line reason lands in the status; no stack trace reaches the resource.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from melancia.evaluation.promotion import promote as move_alias
from melancia.operator import cluster, metrics
from melancia.operator.reconcile import TERMINAL, Action, reconcile
from melancia.operator.spec import GROUP, PLURAL, VERSION, read_spec
from melancia.tracking import RunRecord

RESYNC_SECONDS = float(os.environ.get("MELANCIA_OPERATOR_RESYNC_SECONDS", "5"))
log = logging.getLogger("melancia.operator")


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.level = logging.INFO
    settings.persistence.finalizer = "melancia.io/cleanup"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="melancia.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="melancia.io")
    settings.watching.server_timeout = 60
    metrics.start()


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.timer(GROUP, VERSION, PLURAL, interval=RESYNC_SECONDS, initial_delay=0)
def reconcile_run(body: kopf.Body, patch: kopf.Patch, logger: logging.Logger, **_: Any) -> None:
    current = dict(body.get("status") or {})
    if current.get("phase") in TERMINAL:
        return
    run = read_spec(dict(body))
    try:
        actions = reconcile(run, current, cluster.observe(run))
        for action in actions:
            apply(action, run, body, current, patch)
    except ApiException as exc:
        reason = f"Kubernetes API answered {exc.status} {exc.reason}"
        _record_error(patch, current, reason)
        metrics.RECONCILES.labels("error").inc()
        raise kopf.TemporaryError(reason, delay=10) from None
    except kopf.TemporaryError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported as a condition, retried with backoff
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        _record_error(patch, current, reason)
        metrics.RECONCILES.labels("error").inc()
        raise kopf.TemporaryError(reason, delay=30) from None
    metrics.RECONCILES.labels("ok").inc()


@kopf.on.delete(GROUP, VERSION, PLURAL)
def clean_up(body: kopf.Body, logger: logging.Logger, **_: Any) -> None:
    deleted = cluster.delete_run_jobs(read_spec(dict(body)))
    if deleted:
        logger.info("deleted Jobs %s", ", ".join(deleted))


def apply(action: Action, run: Any, body: kopf.Body, current: dict[str, Any], patch: kopf.Patch) -> None:
    if action.kind == "create_job":
        if cluster.create_job(action.payload):
            metrics.JOBS.labels(action.payload["metadata"]["labels"]["melancia.io/role"]).inc()
    elif action.kind == "delete_job":
        cluster.delete_job(run.namespace, action.payload)
    elif action.kind == "promote":
        promote(run, action.payload["model"], action.payload["version"])
    elif action.kind == "event":
        (kopf.warn if action.payload["type"] == "Warning" else kopf.info)(
            dict(body), reason=action.payload["reason"], message=action.payload["message"])
    elif action.kind == "status":
        _set_status(patch, current, action.payload, body.get("metadata", {}).get("generation"))


def promote(run: Any, model: str, version: str) -> None:
    record = RunRecord(run_name=run.name, base_model=run.base_model, registered_model=model,
                       registered_version=str(version), tracking_uri=run.mlflow_uri)
    move_alias(record, alias=run.alias)
    cluster.roll_out(run, str(version))
    metrics.PROMOTIONS.inc()


def _set_status(patch: kopf.Patch, current: dict[str, Any], update: dict[str, Any], generation: Any) -> None:
    update = dict(update)
    condition = update.pop("condition")
    conditions = [c for c in current.get("conditions", []) if c.get("type") != condition["type"]]
    previous = next((c for c in current.get("conditions", []) if c.get("type") == condition["type"]), None)
    same = previous and all(previous.get(k) == condition[k] for k in ("status", "reason"))
    stamp = previous["lastTransitionTime"] if same else datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    conditions.append({**condition, "lastTransitionTime": stamp})
    phase = update.pop("phase")
    if phase != current.get("phase"):
        metrics.TRANSITIONS.labels(phase).inc()
        if condition["type"] == "FallbackToCPU":
            metrics.FALLBACKS.inc()
    current.update(update, phase=phase, conditions=conditions, message=condition["message"])
    if generation is not None:
        current["observedGeneration"] = generation
    for key, value in current.items():
        patch.status[key] = value


def _record_error(patch: kopf.Patch, current: dict[str, Any], reason: str) -> None:
    _set_status(patch, current, {"phase": current.get("phase", "Pending"),
                                 "condition": {"type": "Reconciling", "status": "False", "reason": "Error",
                                               "message": reason}}, None)
