"""The operator's decisions, as a pure function of what it observes.

``reconcile`` looks at a TrainingRun (spec and status), the Jobs it owns and the scheduling state of
the GPU pod, and returns the actions that move the run forward. It is level-triggered: the same
observation always gives the same actions, Job names are fixed, and every action is idempotent, so
an operator restarted at any point picks up where the cluster is, and nothing is created twice.

Phases: Pending -> Training (GPU, or CPU after FallbackToCPU) -> Evaluating -> Promoted | GateFailed,
or Failed with a reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from melancia.operator.job_builders import eval_job, train_job
from melancia.operator.spec import RunSpec

TERMINAL = ("Promoted", "GateFailed", "Failed")
PERMANENT_WAITING = ("InvalidImageName", "CreateContainerConfigError")
"""Container errors that no retry fixes: the run fails with the reason."""


@dataclass(frozen=True)
class JobState:
    """What the operator needs of a Job: finished or not, and its pod's story."""

    name: str
    succeeded: bool = False
    failed: bool = False
    message: str | None = None
    """Termination message of the finished pod (the training reason, or the evaluation verdict JSON)."""
    unschedulable_since: datetime | None = None
    """When the pod was first reported unschedulable (None: scheduled, or not yet tried)."""
    unschedulable_reason: str | None = None
    waiting: str | None = None
    """Why the container cannot start (``ErrImagePull: ...``, ``CreateContainerConfigError: ...``), if so."""


@dataclass(frozen=True)
class Observation:
    train_gpu: JobState | None = None
    train_cpu: JobState | None = None
    evaluation: JobState | None = None
    gpu_nodes: int = 0
    """Nodes with allocatable nvidia.com/gpu (0: no GPU job can ever be scheduled)."""
    now: datetime = field(default_factory=datetime.now)


@dataclass(frozen=True)
class Action:
    kind: str  # create_job | delete_job | status | promote | event
    payload: Any


def status(phase: str, condition: str, reason: str, message: str, **fields: Any) -> Action:
    return Action("status", {"phase": phase, "condition": {"type": condition, "status": "True", "reason": reason,
                                                           "message": message}, **fields})


def event(reason: str, message: str, warning: bool = False) -> Action:
    return Action("event", {"reason": reason, "message": message, "type": "Warning" if warning else "Normal"})


def reconcile(run: RunSpec, current: dict[str, Any], seen: Observation) -> list[Action]:
    """Actions that move ``run`` (whose status is ``current``) forward, given what was ``seen``."""
    phase = current.get("phase", "Pending")
    if phase in TERMINAL:
        return []
    if seen.evaluation is not None:
        return _waiting(seen.evaluation, "Evaluating") or _evaluating(run, seen.evaluation)
    training = seen.train_cpu or seen.train_gpu
    if training is None:
        return _start_training(run, seen)
    blocked = _waiting(training, "Training")
    if blocked:
        return blocked
    if training.failed:
        reason = (training.message or "the training pod failed").strip().splitlines()[-1][:500]
        return [status("Failed", "Failed", "TrainingFailed", f"{training.name}: {reason}"),
                event("TrainingFailed", reason, warning=True)]
    if training.succeeded:
        return [Action("create_job", eval_job(run)),
                status("Evaluating", "Evaluating", "TrainingSucceeded", f"{training.name} finished; evaluating",
                       evalJob=run.job_name("eval")),
                event("Evaluating", f"training finished on {_device(training)}; gate evaluation started")]
    if training is seen.train_gpu and seen.train_cpu is None:
        return _maybe_fall_back(run, training, seen)
    return []


def _waiting(job: JobState, phase: str) -> list[Action]:
    """A container that cannot start: failed for good, or reported while Kubernetes retries (image pulls)."""
    if job.waiting is None or job.succeeded or job.failed:
        return []
    reason = job.waiting.split(":", 1)[0]
    if reason in PERMANENT_WAITING:
        return [status("Failed", "Failed", reason, f"{job.name}: {job.waiting}"),
                event(reason, job.waiting, warning=True)]
    return [status(phase, phase, reason, f"{job.name}: {job.waiting} (Kubernetes retries with backoff)")]


def _device(job: JobState) -> str:
    return "GPU" if job.name.endswith("train-gpu") else "CPU"


def _start_training(run: RunSpec, seen: Observation) -> list[Action]:
    if run.gpu == "never" or (run.gpu == "prefer" and seen.gpu_nodes == 0):
        why = "gpu: never" if run.gpu == "never" else "no node has nvidia.com/gpu"
        actions = [Action("create_job", train_job(run, "cpu")),
                   status("Training", "Training", "TrainingOnCPU", f"training on CPU ({why})", device="cpu",
                          trainJob=run.job_name("train-cpu"))]
        if run.gpu == "prefer":
            actions += [status("Training", "FallbackToCPU", "NoGPUNodes", why, device="cpu",
                               trainJob=run.job_name("train-cpu")),
                        event("FallbackToCPU", why)]
        return actions
    return [Action("create_job", train_job(run, "gpu")),
            status("Training", "Training", "TrainingOnGPU", "training on GPU", device="gpu",
                   trainJob=run.job_name("train-gpu")),
            event("Training", f"training Job {run.job_name('train-gpu')} created (GPU)")]


def _maybe_fall_back(run: RunSpec, gpu_job: JobState, seen: Observation) -> list[Action]:
    if gpu_job.unschedulable_since is None:
        return []
    waited = (seen.now - gpu_job.unschedulable_since).total_seconds()
    never = seen.gpu_nodes == 0
    if run.gpu == "require":
        return [status("Training", "Training", "WaitingForGPU",
                       f"GPU pod unschedulable for {waited:.0f} s ({gpu_job.unschedulable_reason}); gpu: require")]
    if not never and waited < run.fallback_timeout_s:
        return []
    why = ("no node can ever hold it (no nvidia.com/gpu capacity)" if never else
           f"GPU pod unschedulable for {waited:.0f} s > fallbackTimeoutSeconds {run.fallback_timeout_s}")
    return [Action("delete_job", gpu_job.name), Action("create_job", train_job(run, "cpu")),
            status("Training", "FallbackToCPU", "GPUUnschedulable", why, device="cpu",
                   trainJob=run.job_name("train-cpu")),
            event("FallbackToCPU", why, warning=True)]


def parse_verdict(message: str | None) -> dict[str, Any] | None:
    """The evaluation Job's JSON verdict (its last JSON line), or None."""
    for line in reversed((message or "").strip().splitlines()):
        try:
            found = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(found, dict) and "verdict" in found:
            return found
    return None


def _evaluating(run: RunSpec, job: JobState) -> list[Action]:
    if not (job.succeeded or job.failed):
        return []
    verdict = parse_verdict(job.message)
    if verdict is None:
        reason = (job.message or "the evaluation pod failed without a verdict").strip().splitlines()[-1][:500]
        return [status("Failed", "Failed", "EvaluationFailed", reason), event("EvaluationFailed", reason, True)]
    gate = {"verdict": verdict["verdict"], "failedChecks": verdict.get("failed_checks", []),
            "report": verdict.get("report"), "evalRunId": verdict.get("eval_run_id")}
    if verdict["verdict"] != "passed":
        message = "gate failed: " + "; ".join(gate["failedChecks"]) if gate["failedChecks"] else "gate failed"
        return [status("GateFailed", "GateFailed", "GateFailed", message, gate=gate),
                event("GateFailed", message, warning=True)]
    version = verdict.get("version")
    if not version:
        return [status("Failed", "Failed", "NotRegistered", "the gate passed but the run has no registered version",
                       gate=gate)]
    return [status("Evaluating", "GatePassed", "GatePassed", "every gate check passed", gate=gate),
            Action("promote", {"model": verdict.get("registered_model") or run.registered_model, "version": version}),
            status("Promoted", "Promoted", "Promoted",
                   f"{run.registered_model} version {version} is {run.alias!r}"
                   + (f"; InferenceService {run.inference_service} updated" if run.inference_service else ""),
                   registeredVersion=str(version)),
            event("Promoted", f"version {version} promoted to {run.alias!r}")]
