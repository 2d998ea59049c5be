"""Job manifests the operator creates: training on GPU, training on CPU, and the gated evaluation.

Each Job runs a ``melancia.jobs.*`` entry point (the same the plain manifests in ``jobs/`` use), is
owned by its TrainingRun (deleted with it), mounts the dataset and output volumes, and reports a
one-line reason (training) or the JSON verdict (evaluation) in its termination message.
"""

from __future__ import annotations

import json
from typing import Any

from melancia.operator.spec import GROUP, KIND, VERSION, RunSpec

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
GPU_NODE_LABEL = "nvidia.com/gpu.present"


def owner_reference(run: RunSpec) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "name": run.name, "uid": run.uid,
            "controller": True, "blockOwnerDeletion": True}


def _volumes(run: RunSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes, mounts = [], []
    if run.output_pvc:
        volumes.append({"name": "output", "persistentVolumeClaim": {"claimName": run.output_pvc}})
        mounts.append({"name": "output", "mountPath": run.output_root})
    if run.dataset_pvc and run.dataset_pvc != run.output_pvc:
        volumes.append({"name": "dataset", "persistentVolumeClaim": {"claimName": run.dataset_pvc, "readOnly": True}})
        mounts.append({"name": "dataset", "mountPath": run.dataset_path, "readOnly": True})
    return volumes, mounts


def _env(values: dict[str, str | None]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in values.items() if v is not None]


def _job(run: RunSpec, role: str, container: dict[str, Any], pod_extra: dict[str, Any]) -> dict[str, Any]:
    volumes, mounts = _volumes(run)
    container = {**container, "volumeMounts": mounts, "terminationMessagePolicy": "FallbackToLogsOnError"}
    labels = {**run.labels, "melancia.io/role": role}
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": run.job_name(role), "namespace": run.namespace, "labels": labels,
                     "ownerReferences": [owner_reference(run)]},
        "spec": {"backoffLimit": run.backoff_limit, "ttlSecondsAfterFinished": 7 * 24 * 3600,
                 "template": {"metadata": {"labels": dict(labels)},
                              "spec": {"restartPolicy": "Never", "containers": [container], "volumes": volumes,
                                       "securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                                                           "fsGroup": 1000},
                                       **pod_extra}}},
    }


def train_job(run: RunSpec, device: str) -> dict[str, Any]:
    """The training Job on ``device`` (gpu: node selector, toleration and nvidia.com/gpu limits)."""
    gpu = device == "gpu"
    resources = run.gpu_resources if gpu else run.cpu_resources
    limits: dict[str, Any] = {"cpu": resources.cpu, "memory": resources.memory}
    if gpu:
        limits["nvidia.com/gpu"] = str(max(1, resources.gpus))
    overrides = [f"base_model={run.base_model}", f"dataset_dir={run.dataset_path}", f"run_name={run.name}",
                 *run.overrides]
    container = {
        "name": "train", "image": run.images["trainer" if gpu else "trainerCpu"],
        "command": ["python", "-m", "melancia.jobs.train"],
        "env": _env({"MELANCIA_TRAIN_CONFIG": run.train_config if gpu else run.cpu_train_config,
                     "MELANCIA_TRAIN_SET": ";".join(overrides), "MELANCIA_OUTPUT_DIR": run.output_dir,
                     "MLFLOW_TRACKING_URI": run.mlflow_uri}),
        "resources": {"requests": dict(limits), "limits": limits},
    }
    extra: dict[str, Any] = {}
    if gpu:
        extra = {"nodeSelector": {GPU_NODE_LABEL: "true"}, "tolerations": [GPU_TOLERATION]}
    return _job(run, f"train-{device}", container, extra)


def eval_job(run: RunSpec) -> dict[str, Any]:
    """The gated evaluation Job: exits 0 only when the gate passes; its termination message is the verdict."""
    overrides = []
    if run.eval_dataset:
        overrides.append(f"dataset={run.eval_dataset}")
    if run.gate:
        overrides.append("gate=" + json.dumps([_gate_check(c) for c in run.gate]))
    container = {
        "name": "evaluate", "image": run.images["evaluator"], "command": ["python", "-m", "melancia.jobs.evaluate"],
        "env": _env({"MELANCIA_RUN_DIR": run.output_dir, "MELANCIA_EVAL_CONFIG": run.eval_config,
                     "MELANCIA_EVAL_SET": ";".join(overrides) or None, "MLFLOW_TRACKING_URI": run.mlflow_uri}),
        "resources": {"requests": {"cpu": run.cpu_resources.cpu, "memory": run.cpu_resources.memory},
                      "limits": {"cpu": run.cpu_resources.cpu, "memory": run.cpu_resources.memory}},
    }
    job = _job(run, "eval", container, {})
    job["spec"]["backoffLimit"] = 0  # a failed gate is an answer, not an error to retry
    return job


def _gate_check(check: dict[str, Any]) -> dict[str, Any]:
    """CRD camelCase (minDelta) -> eval config snake_case (min_delta)."""
    names = {"minDelta": "min_delta", "maxDelta": "max_delta"}
    return {names.get(k, k): v for k, v in check.items()}
