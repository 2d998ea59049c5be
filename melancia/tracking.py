"""MLflow runs and the model registry, with a local default that needs no server.

Without a configured URI, runs go to ``sqlite:///MELANCIA_HOME/mlflow.db`` with artifacts under
``MELANCIA_HOME/mlartifacts``; any URI (``http://mlflow:5000`` in the cluster) is accepted through
the config or ``MLFLOW_TRACKING_URI``. Only the main process of a distributed run tracks.

A finished training run also leaves ``run.json`` in its folder (:class:`RunRecord`): what the stages
after it (evaluation, promotion, serving) need to find its base model and its registered version.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from melancia.settings import get_settings


@dataclass
class TrackingConfig:
    """Where the run is recorded."""

    tracking_uri: str | None = None
    """MLflow tracking URI; None: $MLFLOW_TRACKING_URI, else sqlite in MELANCIA_HOME."""
    experiment: str = "melancia-sft"
    """MLflow experiment name."""
    registered_model: str | None = "melancia-assistant"
    """Registered model that receives the result as a new version; None: do not register."""


RUN_RECORD = "run.json"
OUTPUT_DIR_TAG = "melancia.output_dir"
"""Tag of a training run naming its output folder (where its run.json lies)."""


@dataclass(frozen=True)
class RunRecord:
    """``run.json`` of a finished training run (``folder`` is where it was found; None when built by hand)."""

    run_name: str
    base_model: str
    mlflow_run_id: str | None = None
    tracking_uri: str | None = None
    experiment: str | None = None
    registered_model: str | None = None
    """None when the run registered no version."""
    registered_version: str | None = None
    gguf: str | None = None
    folder: Path | None = field(default=None, compare=False)

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if k != "folder"}, indent=2)


def read_run_record(folder: Path) -> RunRecord | None:
    """The record in ``folder``, if it holds one."""
    path = Path(folder) / RUN_RECORD
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    known = {k: data[k] for k in RunRecord.__dataclass_fields__ if k != "folder" and k in data}
    return RunRecord(**known, folder=Path(folder))


def find_run_record(path: Path | str) -> RunRecord | None:
    """The record of the training run ``path`` is (a run folder) or lies in (a file of one), if any."""
    path = Path(path)
    for folder in (path, path.parent, path.parent.parent):
        record = read_run_record(folder)
        if record is not None:
            return record
    return None


def tracking_uri(configured: str | None = None) -> str:
    """The URI in effect: the config's, else ``MLFLOW_TRACKING_URI``, else sqlite in MELANCIA_HOME."""
    if configured:
        return configured
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    paths = get_settings().paths
    paths.home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{paths.mlflow_db}"


def _artifact_location(uri: str) -> str | None:
    """Local stores keep artifacts inside MELANCIA_HOME (not in the current folder)."""
    if uri.startswith(("sqlite:", "file:")) or "://" not in uri:
        return (get_settings().paths.home / "mlartifacts").as_uri()
    return None


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> ``{"lora.r": "16", ...}`` with values cut to MLflow's 6000 characters."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = str(value)[:6000]
    return flat


class Tracker:
    """One MLflow run: params, step metrics, artifacts, registration."""

    def __init__(self, uri: str, run_id: str) -> None:
        from mlflow import MlflowClient

        self.uri, self.run_id = uri, run_id
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        existing = self.client.get_run(self.run_id).data.params
        fresh = [Param(k, v) for k, v in flatten(params).items() if k not in existing]
        for i in range(0, len(fresh), 100):
            self.client.log_batch(self.run_id, params=fresh[i:i + 100])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    def log_artifacts(self, local_dir: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(self.run_id, str(local_dir), artifact_path)

    def log_artifact(self, local_file: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(local_file), artifact_path)

    def set_tags(self, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, value)

    def register(self, name: str, artifact_path: str, description: str = "") -> str:
        """A new version of registered model ``name`` pointing at this run's ``artifact_path``."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            self.client.create_registered_model(name, description="MelancIA assistant adapters")
        source = f"{self.client.get_run(self.run_id).info.artifact_uri}/{artifact_path}"
        version = self.client.create_model_version(name, source, run_id=self.run_id, description=description)
        return str(version.version)


@contextmanager
def tracked_run(experiment: str, run_name: str, *, uri: str | None = None, run_id: str | None = None,
                tags: dict[str, str] | None = None) -> Iterator[Tracker]:
    """Start (or continue, given ``run_id``) a run; it ends FINISHED, or FAILED on an exception."""
    from mlflow import MlflowClient

    uri = tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    if run_id is None:
        found = client.get_experiment_by_name(experiment)
        experiment_id = (found.experiment_id if found else
                         client.create_experiment(experiment, artifact_location=_artifact_location(uri)))
        run_id = client.create_run(experiment_id, run_name=run_name, tags=tags or {}).info.run_id
    else:
        client.update_run(run_id, status="RUNNING")
    try:
        yield Tracker(uri, run_id)
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
