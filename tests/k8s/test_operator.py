"""The operator as a real process against the test control plane (kube-apiserver, scheduler, Job
controller, kwok nodes `gpu-node` and `cpu-node`), with MLflow in a local sqlite registry.

kwok completes the pods of training Jobs; evaluation pods are left running so the test plays their
kubelet and writes the gate's verdict as the container's termination message, as the real Job does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.k8s.fixtures import REPO, assets_dir
from tests.k8s.crds import install_crd
from tests.servers import free_port

pytestmark = pytest.mark.k8s
GROUP, VERSION, PLURAL = "melancia.io", "v1alpha1", "trainingruns"
ISVC = ("serving.kserve.io", "v1beta1", "inferenceservices")


def wait_for(check: Callable[[], Any], what: str, timeout_s: float = 60.0, log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    tail = log.read_text()[-4000:] if log and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


@pytest.fixture(scope="module")
def cluster(scheduling_cluster):
    install_crd(scheduling_cluster.client, REPO / "manifests/crds/trainingrun.yaml")
    install_crd(scheduling_cluster.client, assets_dir() / "crds/serving.kserve.io_inferenceservices.yaml")
    return scheduling_cluster


class Operator:
    """``python -m melancia.operator`` against the cluster; start, kill -9 and restart it."""

    def __init__(self, kubeconfig: Path, work: Path) -> None:
        self.work, self.process = work, None
        self.metrics_port = free_port()
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "MELANCIA_OPERATOR_RESYNC_SECONDS": "1",
                    "MELANCIA_OPERATOR_METRICS_PORT": str(self.metrics_port), "MELANCIA_HOME": str(work / "home"),
                    "MELANCIA_OPERATOR_LIVENESS": f"http://127.0.0.1:{free_port()}/healthz"}
        self.log = work / "operator.log"
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        sink = self.log.open("a")
        self.process = subprocess.Popen([sys.executable, "-m", "melancia.operator"], env=self.env, stdout=sink,
                                        stderr=subprocess.STDOUT, cwd=REPO)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def operator(cluster, tmp_path) -> Iterator[Operator]:
    running = Operator(cluster.kubeconfig, tmp_path)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def namespace(cluster) -> str:
    from kubernetes import client

    name = f"ml-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(cluster.client).create_namespace({"metadata": {"name": name}})
    return name


@pytest.fixture
def registry(tmp_path) -> str:
    """A sqlite MLflow registry with version 1 of melancia-assistant, evaluated and passed (what the Jobs leave)."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow = MlflowClient(tracking_uri=uri, registry_uri=uri)
    mlflow.create_registered_model("melancia-assistant")
    version = mlflow.create_model_version("melancia-assistant", str(tmp_path / "adapter")).version
    mlflow.set_model_version_tag("melancia-assistant", version, "melancia.gate", "passed")
    return uri


def custom(cluster):
    from kubernetes import client

    return client.CustomObjectsApi(cluster.client)


def create_run(cluster, namespace: str, name: str, registry: str, **spec) -> None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TrainingRun", "metadata": {"name": name},
            "spec": {"baseModel": "packaged:smollm2", "dataset": {"path": "/data"}, "mlflowTrackingUri": registry,
                     "resources": {"gpu": {"cpu": "1", "memory": "1Gi"}, "cpu": {"cpu": "1", "memory": "1Gi"}},
                     **spec}}
    custom(cluster).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


def run_status(cluster, namespace: str, name: str) -> dict[str, Any]:
    return custom(cluster).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name).get("status") or {}


def pods_of(cluster, namespace: str, job: str):
    from kubernetes import client

    return client.CoreV1Api(cluster.client).list_namespaced_pod(namespace, label_selector=f"job-name={job}").items


def finish_eval_pod(cluster, namespace: str, job: str, verdict: dict[str, Any], *, passed: bool) -> None:
    """What the evaluation container does at its end: the verdict as termination message, exit 0 or 1."""
    from kubernetes import client

    pod = wait_for(lambda: next((p for p in pods_of(cluster, namespace, job) if p.status.phase == "Running"), None),
                   f"running pod of {job}")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    terminated = {"exitCode": 0 if passed else 1, "reason": "Completed" if passed else "Error",
                  "message": "...\n" + json.dumps(verdict), "startedAt": now, "finishedAt": now}
    status = {"phase": "Succeeded" if passed else "Failed",
              "containerStatuses": [{"name": "evaluate", "image": pod.spec.containers[0].image, "imageID": "",
                                     "ready": False, "restartCount": 0, "state": {"terminated": terminated}}]}
    client.CoreV1Api(cluster.client).patch_namespaced_pod_status(pod.metadata.name, namespace, {"status": status})


def verdict(result: str, **extra) -> dict[str, Any]:
    return {"verdict": result, "registered_model": "melancia-assistant", "version": "1", "failed_checks": [], **extra}


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status.get("conditions", [])}


def test_crd_rejects_invalid_runs(cluster, namespace):
    from kubernetes.client.exceptions import ApiException

    for spec, field in (({"dataset": {"path": "/d"}}, "baseModel"),
                        ({"baseModel": "x", "dataset": {"path": "/d"}, "gpu": "maybe"}, "gpu"),
                        ({"baseModel": "x", "dataset": {"path": "/d"}, "fallbackTimeoutSeconds": -1}, "fallbackTimeoutSeconds")):
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TrainingRun", "metadata": {"name": "bad"}, "spec": spec}
        with pytest.raises(ApiException) as caught:
            custom(cluster).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        assert caught.value.status == 422 and field in caught.value.body
    create_run(cluster, namespace, "defaults", "sqlite:///x.db")
    stored = custom(cluster).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "defaults")
    assert stored["spec"]["gpu"] == "prefer" and stored["spec"]["fallbackTimeoutSeconds"] == 600


def test_gpu_run_passes_the_gate_promotes_and_rolls_out(cluster, namespace, operator, registry):
    from kubernetes import client
    from mlflow import MlflowClient

    custom(cluster).create_namespaced_custom_object(*ISVC[:2], namespace, ISVC[2], {
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": {"name": "melancia"},
        "spec": {"predictor": {"containers": [{"name": "kserve-container", "image": "ghcr.io/melancia/predictor:0.1.0"}]}}})
    create_run(cluster, namespace, "gpu-run", registry, promotion={"inferenceService": "melancia",
                                                                   "canaryTrafficPercent": 20})
    train = wait_for(lambda: pods_of(cluster, namespace, "gpu-run-train-gpu"), "GPU training pod", log=operator.log)
    assert wait_for(lambda: pods_of(cluster, namespace, "gpu-run-train-gpu")[0].spec.node_name, "scheduling") == "gpu-node"
    assert train[0].spec.containers[0].resources.limits["nvidia.com/gpu"] == "1"
    wait_for(lambda: run_status(cluster, namespace, "gpu-run").get("phase") == "Evaluating", "Evaluating",
             log=operator.log)
    finish_eval_pod(cluster, namespace, "gpu-run-eval", verdict("passed"), passed=True)
    status = wait_for(lambda: (s := run_status(cluster, namespace, "gpu-run")).get("phase") == "Promoted" and s,
                      "Promoted", log=operator.log)
    assert status["device"] == "gpu" and status["registeredVersion"] == "1" and status["gate"]["verdict"] == "passed"
    assert {"Training", "Evaluating", "GatePassed", "Promoted"} <= set(conditions(status))
    mlflow = MlflowClient(tracking_uri=registry, registry_uri=registry)
    assert str(mlflow.get_model_version_by_alias("melancia-assistant", "champion").version) == "1"
    isvc = custom(cluster).get_namespaced_custom_object(*ISVC[:2], namespace, ISVC[2], "melancia")
    assert isvc["spec"]["predictor"]["annotations"]["melancia.io/model-version"] == "1"
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 20
    events = client.CoreV1Api(cluster.client).list_namespaced_event(namespace).items
    assert {"Promoted", "Evaluating"} <= {e.reason for e in events if e.involved_object.name == "gpu-run"}
    metrics = httpx.get(f"http://127.0.0.1:{operator.metrics_port}/metrics").text
    assert "melancia_operator_promotions_total 1.0" in metrics


def test_without_a_free_gpu_it_falls_back_to_cpu_after_the_timeout(cluster, namespace, operator, registry):
    from kubernetes import client

    core = client.CoreV1Api(cluster.client)
    core.create_namespaced_pod(namespace, {"metadata": {"name": "gpu-hog"}, "spec": {
        "nodeSelector": {"nvidia.com/gpu.present": "true"}, "tolerations": [{"operator": "Exists"}],
        "containers": [{"name": "hog", "image": "busybox", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}})
    wait_for(lambda: core.read_namespaced_pod("gpu-hog", namespace).spec.node_name == "gpu-node", "the GPU taken")
    try:
        create_run(cluster, namespace, "busy-gpu", registry, fallbackTimeoutSeconds=3)
        status = wait_for(lambda: (s := run_status(cluster, namespace, "busy-gpu")).get("device") == "cpu" and s,
                          "fallback to CPU", log=operator.log)
        fallback = conditions(status)["FallbackToCPU"]
        assert fallback["reason"] == "GPUUnschedulable" and "fallbackTimeoutSeconds 3" in fallback["message"]
        cpu_pod = wait_for(lambda: [p for p in pods_of(cluster, namespace, "busy-gpu-train-cpu") if p.spec.node_name],
                           "CPU pod scheduled")
        assert cpu_pod[0].spec.node_name == "cpu-node"
        wait_for(lambda: not pods_of(cluster, namespace, "busy-gpu-train-gpu")
                 and _no_job(cluster, namespace, "busy-gpu-train-gpu"), "GPU Job deleted")
    finally:
        core.delete_namespaced_pod("gpu-hog", namespace, grace_period_seconds=0)
        wait_for(lambda: "gpu-hog" not in {p.metadata.name for p in core.list_namespaced_pod(namespace).items},
                 "the GPU given back")


def _no_job(cluster, namespace: str, name: str) -> bool:
    from kubernetes import client

    return name not in {j.metadata.name for j in client.BatchV1Api(cluster.client).list_namespaced_job(namespace).items}


def test_cordoned_gpu_node_means_cpu_at_once(cluster, namespace, operator, registry):
    from kubernetes import client

    core = client.CoreV1Api(cluster.client)
    core.patch_node("gpu-node", {"spec": {"unschedulable": True}})
    try:
        create_run(cluster, namespace, "cordoned", registry)
        status = wait_for(lambda: (s := run_status(cluster, namespace, "cordoned")).get("device") and s, "a device",
                          log=operator.log)
        assert status["device"] == "cpu" and conditions(status)["FallbackToCPU"]["reason"] == "NoGPUNodes"
        assert _no_job(cluster, namespace, "cordoned-train-gpu")
    finally:
        core.patch_node("gpu-node", {"spec": {"unschedulable": False}})


def test_failed_gate_stops_with_its_numbers_and_promotes_nothing(cluster, namespace, operator, registry):
    from mlflow import MlflowClient

    create_run(cluster, namespace, "weak", registry, gpu="never")
    wait_for(lambda: run_status(cluster, namespace, "weak").get("phase") == "Evaluating", "Evaluating", log=operator.log)
    failed = verdict("failed", failed_checks=["fact_coverage: delta +0.010 < min_delta 0.030"])
    finish_eval_pod(cluster, namespace, "weak-eval", failed, passed=False)
    status = wait_for(lambda: (s := run_status(cluster, namespace, "weak")).get("phase") == "GateFailed" and s,
                      "GateFailed", log=operator.log)
    assert status["gate"]["failedChecks"] == ["fact_coverage: delta +0.010 < min_delta 0.030"]
    assert "min_delta 0.030" in conditions(status)["GateFailed"]["message"]
    mlflow = MlflowClient(tracking_uri=registry, registry_uri=registry)
    assert not mlflow.get_registered_model("melancia-assistant").aliases


def test_killed_operator_resumes_without_duplicates_and_deletion_cleans_up(cluster, namespace, operator, registry):
    from kubernetes import client

    create_run(cluster, namespace, "restart", registry, gpu="never")
    wait_for(lambda: run_status(cluster, namespace, "restart").get("phase") == "Evaluating", "Evaluating",
             log=operator.log)
    operator.kill()  # kill -9 mid-run: the evaluation is still going
    operator.start()
    finish_eval_pod(cluster, namespace, "restart-eval", verdict("passed"), passed=True)
    wait_for(lambda: run_status(cluster, namespace, "restart").get("phase") == "Promoted", "Promoted", log=operator.log)
    batch = client.BatchV1Api(cluster.client)
    jobs = [j.metadata.name for j in batch.list_namespaced_job(namespace, label_selector="melancia.io/training-run=restart").items]
    assert sorted(jobs) == ["restart-eval", "restart-train-cpu"]
    assert len(pods_of(cluster, namespace, "restart-train-cpu")) == 1 and len(pods_of(cluster, namespace, "restart-eval")) == 1
    custom(cluster).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "restart")
    wait_for(lambda: not batch.list_namespaced_job(namespace, label_selector="melancia.io/training-run=restart").items,
             "Jobs deleted with the run", log=operator.log)


def apply_file(api_client, path: Path, *, dry_run: bool, kinds: tuple[str, ...] = ()) -> list[str]:
    """Every object (of ``kinds``, when given) of a YAML file through the API server (``dry_run``: validated
    and defaulted, not stored)."""
    from kubernetes import client, utils

    created = []
    for body in yaml.safe_load_all(path.read_text()):
        if not body or (kinds and body["kind"] not in kinds):
            continue
        kwargs = {"dry_run": "All"} if dry_run else {}
        try:
            if body["apiVersion"].startswith(GROUP):
                client.CustomObjectsApi(api_client).create_namespaced_custom_object(
                    GROUP, VERSION, body["metadata"]["namespace"], PLURAL, body, **kwargs)
            else:
                utils.create_from_dict(api_client, body, **kwargs)
        except (client.exceptions.ApiException, utils.FailToCreateError) as exc:
            statuses = [e.status for e in getattr(exc, "api_exceptions", [exc])]
            if statuses != [409]:  # "already exists" means valid and present; anything else is a failure
                raise
        created.append(f"{body['kind']}/{body['metadata']['name']}")
    return created


def test_every_manifest_passes_server_side_validation(cluster):
    from kubernetes import client

    for name in ("melancia", "melancia-system"):
        try:
            client.CoreV1Api(cluster.client).create_namespace({"metadata": {"name": name}})
        except client.exceptions.ApiException as exc:
            assert exc.status == 409
    checked = []
    for path in [REPO / "manifests/operator/operator.yaml", REPO / "manifests/trainingrun-example.yaml",
                 REPO / "manifests/kind/e2e.yaml", *sorted((REPO / "jobs").glob("*.yaml"))]:
        checked += apply_file(cluster.client, path, dry_run=True)
    assert {"Deployment/melancia-operator", "ClusterRole/melancia-operator", "TrainingRun/acos-smollm2",
            "Job/acos-smollm2-train-gpu", "Job/acos-smollm2-eval", "TrainingRun/e2e-smollm2"} <= set(checked)


def service_account_kubeconfig(cluster, work: Path) -> Path:
    """A kubeconfig for the operator's ServiceAccount (only the RBAC of manifests/operator/operator.yaml)."""
    from kubernetes import client

    core = client.CoreV1Api(cluster.client)
    try:
        core.create_namespace({"metadata": {"name": "melancia-system"}})
    except client.exceptions.ApiException as exc:
        assert exc.status == 409
    apply_file(cluster.client, REPO / "manifests/operator/operator.yaml", dry_run=False,
               kinds=("ServiceAccount", "ClusterRole", "ClusterRoleBinding"))
    token = core.create_namespaced_service_account_token(
        "melancia-operator", "melancia-system", {"spec": {"expirationSeconds": 3600}}).status.token
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "operator",
              "clusters": [{"name": "test", "cluster": {"server": cluster.server,
                                                        "certificate-authority": str(cluster.pki.ca_cert)}}],
              "users": [{"name": "operator", "user": {"token": token}}],
              "contexts": [{"name": "operator", "context": {"cluster": "test", "user": "operator"}}]}
    path = work / "operator-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_operator_needs_nothing_beyond_its_rbac(cluster, namespace, registry, tmp_path):
    kubeconfig = service_account_kubeconfig(cluster, tmp_path)
    operator = Operator(kubeconfig, tmp_path)
    operator.start()
    try:
        create_run(cluster, namespace, "least", registry, gpu="never")
        wait_for(lambda: run_status(cluster, namespace, "least").get("phase") == "Evaluating", "Evaluating",
                 log=operator.log)
        finish_eval_pod(cluster, namespace, "least-eval", verdict("passed"), passed=True)
        wait_for(lambda: run_status(cluster, namespace, "least").get("phase") == "Promoted", "Promoted",
                 log=operator.log)
        assert "Forbidden" not in operator.log.read_text()
    finally:
        operator.stop()
