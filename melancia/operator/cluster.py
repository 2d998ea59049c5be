"""What the operator reads from and writes to the cluster, through the ``kubernetes`` client.

Reads become an :class:`Observation` for :func:`melancia.operator.reconcile.reconcile`; writes apply
its actions idempotently (an existing Job is not an error, a missing one is not an error to delete).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from melancia.operator.reconcile import JobState, Observation
from melancia.operator.spec import RunSpec

BAD_WAITING = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
               "CreateContainerError"}


def observe(run: RunSpec, now: datetime | None = None) -> Observation:
    return Observation(train_gpu=job_state(run.namespace, run.job_name("train-gpu")),
                       train_cpu=job_state(run.namespace, run.job_name("train-cpu")),
                       evaluation=job_state(run.namespace, run.job_name("eval")),
                       gpu_nodes=schedulable_gpu_nodes(), now=now or datetime.now(UTC))


def schedulable_gpu_nodes() -> int:
    """Nodes that are not cordoned and have allocatable nvidia.com/gpu."""
    nodes = client.CoreV1Api().list_node().items
    return sum(1 for n in nodes if not (n.spec and n.spec.unschedulable)
               and int((n.status.allocatable or {}).get("nvidia.com/gpu", "0") or 0) > 0)


def job_state(namespace: str, name: str) -> JobState | None:
    try:
        job = client.BatchV1Api().read_namespaced_job(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    conditions = {c.type: c for c in (job.status.conditions or []) if c.status == "True"}
    succeeded = "Complete" in conditions or bool(job.status.succeeded) and not job.status.active
    failed = "Failed" in conditions
    pods = client.CoreV1Api().list_namespaced_pod(namespace, label_selector=f"job-name={name}").items
    pods.sort(key=lambda p: p.metadata.creation_timestamp or datetime.min.replace(tzinfo=UTC))
    message, since, why, waiting = None, None, None, None
    if pods:
        message = _termination_message(pods[-1])
        since, why = _unschedulable(pods[-1])
        waiting = _waiting_reason(pods[-1])
    if failed and message is None and "Failed" in conditions:
        message = conditions["Failed"].message or conditions["Failed"].reason
    return JobState(name, succeeded=succeeded and not failed, failed=failed, message=message,
                    unschedulable_since=since, unschedulable_reason=why, waiting=waiting)


def _termination_message(pod: Any) -> str | None:
    for status in pod.status.container_statuses or []:
        terminated = status.state and status.state.terminated
        if terminated and terminated.message:
            return terminated.message
    return None


def _unschedulable(pod: Any) -> tuple[datetime | None, str | None]:
    for condition in pod.status.conditions or []:
        if condition.type == "PodScheduled" and condition.status == "False" and condition.reason == "Unschedulable":
            return condition.last_transition_time, condition.message
    return None, None


def _waiting_reason(pod: Any) -> str | None:
    for status in pod.status.container_statuses or []:
        waiting = status.state and status.state.waiting
        if waiting and waiting.reason in BAD_WAITING:
            return f"{waiting.reason}: {waiting.message or status.image}"
    return None


def create_job(manifest: dict[str, Any]) -> bool:
    """Create the Job unless it exists; True when it was created now."""
    try:
        client.BatchV1Api().create_namespaced_job(manifest["metadata"]["namespace"], manifest)
        return True
    except ApiException as exc:
        if exc.status == 409:
            return False
        raise


def delete_job(namespace: str, name: str) -> None:
    try:
        client.BatchV1Api().delete_namespaced_job(name, namespace, propagation_policy="Background")
    except ApiException as exc:
        if exc.status != 404:
            raise


def delete_run_jobs(run: RunSpec) -> list[str]:
    """Every Job of the run (garbage collection also does it through owner references, when it runs)."""
    jobs = client.BatchV1Api().list_namespaced_job(
        run.namespace, label_selector=f"melancia.io/training-run={run.name}").items
    for job in jobs:
        delete_job(run.namespace, job.metadata.name)
    return [job.metadata.name for job in jobs]


def roll_out(run: RunSpec, version: str) -> None:
    """Point the InferenceService's predictor at the new version (a new revision loads the champion)."""
    if not run.inference_service:
        return
    predictor: dict[str, Any] = {"annotations": {"melancia.io/model-version": str(version)}}
    if run.canary_traffic_percent is not None:
        predictor["canaryTrafficPercent"] = run.canary_traffic_percent
    body = {"metadata": {"annotations": {"melancia.io/model-version": str(version),
                                         "melancia.io/training-run": run.name}},
            "spec": {"predictor": predictor}}
    client.CustomObjectsApi().patch_namespaced_custom_object(
        "serving.kserve.io", "v1beta1", run.namespace, "inferenceservices", run.inference_service, body)
