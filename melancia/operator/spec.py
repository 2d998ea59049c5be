"""The TrainingRun resource as the operator reads it: spec with defaults, and names derived from it.

The CRD (``manifests/crds/trainingrun.yaml``) validates and defaults on the API server; this module
applies the same defaults so the operator behaves identically on objects created before a default
existed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GROUP, VERSION, PLURAL, KIND = "melancia.io", "v1alpha1", "trainingruns", "TrainingRun"
DEFAULT_IMAGES = {"trainer": "ghcr.io/melancia/trainer:0.1.0", "trainerCpu": "ghcr.io/melancia/trainer-cpu:0.1.0",
                  "evaluator": "ghcr.io/melancia/trainer-cpu:0.1.0"}


@dataclass(frozen=True)
class Resources:
    cpu: str
    memory: str
    gpus: int = 0


@dataclass(frozen=True)
class RunSpec:
    name: str
    namespace: str
    uid: str
    base_model: str
    dataset_path: str
    dataset_pvc: str | None
    train_config: str
    cpu_train_config: str
    overrides: list[str]
    gpu: str  # require | prefer | never
    fallback_timeout_s: int
    gpu_resources: Resources
    cpu_resources: Resources
    eval_dataset: str | None
    eval_config: str
    gate: list[dict[str, Any]]
    registered_model: str
    alias: str
    inference_service: str | None
    canary_traffic_percent: int | None
    mlflow_uri: str | None
    images: dict[str, str]
    output_pvc: str | None
    output_root: str
    backoff_limit: int
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def output_dir(self) -> str:
        return f"{self.output_root.rstrip('/')}/{self.name}"

    def job_name(self, role: str) -> str:
        """``<run>-train-gpu``, ``<run>-train-cpu``, ``<run>-eval``: fixed names make creation idempotent."""
        return f"{self.name}-{role}"[:63]


def _resources(raw: dict[str, Any] | None, cpu: str, memory: str, gpus: int) -> Resources:
    raw = raw or {}
    return Resources(str(raw.get("cpu", cpu)), str(raw.get("memory", memory)), int(raw.get("gpus", gpus)))


def read_spec(body: dict[str, Any]) -> RunSpec:
    """The run's spec with every default filled in."""
    meta, spec = body["metadata"], body.get("spec", {})
    dataset = spec.get("dataset", {})
    evaluation = spec.get("evaluation", {})
    promotion = spec.get("promotion", {})
    resources = spec.get("resources", {})
    output = spec.get("output", {})
    return RunSpec(
        name=meta["name"], namespace=meta.get("namespace", "default"), uid=meta.get("uid", ""),
        base_model=spec["baseModel"], dataset_path=dataset["path"], dataset_pvc=dataset.get("pvc"),
        train_config=spec.get("trainConfig", "configs/train/qwen2.5-0.5b-lora.yaml"),
        cpu_train_config=spec.get("cpuTrainConfig", "configs/train/smollm2-cpu.yaml"),
        overrides=list(spec.get("overrides", [])), gpu=spec.get("gpu", "prefer"),
        fallback_timeout_s=int(spec.get("fallbackTimeoutSeconds", 600)),
        gpu_resources=_resources(resources.get("gpu"), "4", "24Gi", 1),
        cpu_resources=_resources(resources.get("cpu"), "2", "8Gi", 0),
        eval_dataset=evaluation.get("dataset"), eval_config=evaluation.get("config", "configs/eval/default.yaml"),
        gate=list(evaluation.get("gate", [])), registered_model=promotion.get("registeredModel", "melancia-assistant"),
        alias=promotion.get("alias", "champion"), inference_service=promotion.get("inferenceService"),
        canary_traffic_percent=promotion.get("canaryTrafficPercent"), mlflow_uri=spec.get("mlflowTrackingUri"),
        images={**DEFAULT_IMAGES, **spec.get("images", {})}, output_pvc=output.get("pvc"),
        output_root=output.get("path", "/mnt/melancia/runs"), backoff_limit=int(spec.get("backoffLimit", 2)),
        labels={"app.kubernetes.io/managed-by": "melancia-operator", "melancia.io/training-run": meta["name"]})
