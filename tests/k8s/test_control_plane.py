"""The test control plane itself: the real kube-apiserver stores and validates objects, and (with
kube-scheduler, kube-controller-manager and kwok) the real scheduler places pods on fake GPU/CPU nodes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.k8s.controlplane import GPU_LABEL, GPU_RESOURCE

pytestmark = pytest.mark.k8s

GROUP, VERSION, PLURAL = "k8s-test.melancia.io", "v1alpha1", "widgets"


def wait_for(condition: Callable[[], Any], timeout_s: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met after {timeout_s} s")
        time.sleep(0.2)


def new_namespace(api: client.ApiClient) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def job_body(name: str, resources: dict[str, str] | None = None,
             node_selector: dict[str, str] | None = None) -> client.V1Job:
    container = client.V1Container(
        name="train", image="ghcr.io/melancia/trainer:test", command=["melancia", "train"],
        resources=client.V1ResourceRequirements(limits=resources) if resources else None)
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name, labels={"app.kubernetes.io/part-of": "melancia"}),
        spec=client.V1JobSpec(backoff_limit=0, template=client.V1PodTemplateSpec(
            spec=client.V1PodSpec(restart_policy="Never", containers=[container], node_selector=node_selector))))


# --- kube-apiserver + etcd ------------------------------------------------------------------------------


def test_server_reports_its_version(control_plane) -> None:
    info = client.VersionApi(control_plane.client).get_code()
    assert info.major == "1" and info.git_version.startswith("v1.")
    assert control_plane.kubeconfig.is_file()


def test_namespace_and_job_round_trip(control_plane) -> None:
    api = control_plane.client
    namespace = new_namespace(api)
    assert client.CoreV1Api(api).read_namespace(namespace).status.phase == "Active"

    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(namespace, job_body("train-1", resources={"cpu": "1", "memory": "1Gi"}))
    job = batch.read_namespaced_job("train-1", namespace)
    assert job.metadata.labels["app.kubernetes.io/part-of"] == "melancia"
    assert job.spec.template.spec.containers[0].command == ["melancia", "train"]
    assert job.spec.template.spec.containers[0].resources.limits == {"cpu": "1", "memory": "1Gi"}
    assert job.spec.backoff_limit == 0 and job.spec.completions == 1  # defaulted by the server
    assert [j.metadata.name for j in batch.list_namespaced_job(namespace).items] == ["train-1"]

    # No Job controller runs here: a test sets the status itself, through the status subresource,
    # and the server validates it (a Complete Job needs start/completion times and SuccessCriteriaMet).
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    conditions = [{"type": t, "status": "True", "lastProbeTime": now, "lastTransitionTime": now}
                  for t in ("SuccessCriteriaMet", "Complete")]
    batch.patch_namespaced_job_status("train-1", namespace, {"status": {
        "startTime": now, "completionTime": now, "succeeded": 1, "conditions": conditions}})
    status = batch.read_namespaced_job_status("train-1", namespace).status
    assert status.succeeded == 1 and {c.type for c in status.conditions} == {"SuccessCriteriaMet", "Complete"}


def test_rbac_is_enforced(control_plane) -> None:
    """Authorization is RBAC: an unknown bearer token is rejected, the admin token works."""
    import ssl
    import urllib.error
    import urllib.request

    context = ssl.create_default_context(cafile=str(control_plane.pki.ca_cert))

    def get(token: str) -> int:
        request = urllib.request.Request(f"{control_plane.server}/api/v1/namespaces",
                                         headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    assert get(control_plane.token) == 200
    assert get("not-a-token") == 401


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP, "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "widget", "kind": "Widget"},
        "versions": [{
            "name": VERSION, "served": True, "storage": True, "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {"type": "object", "required": ["model"], "properties": {
                        "model": {"type": "string", "minLength": 1},
                        "epochs": {"type": "integer", "minimum": 1, "default": 1}}},
                    "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
                },
                "required": ["spec"],
            }},
        }],
    },
}


def test_custom_resource_definition_validates_objects(control_plane) -> None:
    api = control_plane.client
    extensions = client.ApiextensionsV1Api(api)
    extensions.create_custom_resource_definition(CRD)
    wait_for(lambda: any(c.type == "Established" and c.status == "True"
                         for c in extensions.read_custom_resource_definition(CRD["metadata"]["name"]).status.conditions
                         or []), 30, "CRD Established")
    namespace = new_namespace(api)
    custom = client.CustomObjectsApi(api)

    def create(name: str, spec: dict) -> dict:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Widget", "metadata": {"name": name}, "spec": spec}
        return custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    def create_when_served(name: str, spec: dict) -> dict:
        for _ in range(50):  # the new resource can answer 404 for a moment after Established
            try:
                return create(name, spec)
            except ApiException as error:
                if error.status != 404:
                    raise
                time.sleep(0.2)
        return create(name, spec)

    with pytest.raises(ApiException) as missing_field:
        create_when_served("bad", {"epochs": 3})
    assert missing_field.value.status == 422
    assert "spec.model" in missing_field.value.body and "Required value" in missing_field.value.body

    with pytest.raises(ApiException) as below_minimum:
        create("worse", {"model": "smollm2", "epochs": 0})
    assert below_minimum.value.status == 422 and "spec.epochs" in below_minimum.value.body

    created = create("good", {"model": "smollm2"})
    assert created["spec"] == {"model": "smollm2", "epochs": 1}  # structural-schema default applied

    # The status subresource: status only through /status, spec changes there are ignored.
    custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, "good",
                                                 {"status": {"phase": "Running"}, "spec": {"model": "other"}})
    stored = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "good")
    assert stored["status"] == {"phase": "Running"} and stored["spec"]["model"] == "smollm2"
    custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "good", {"status": {"phase": "Lost"}})
    stored = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "good")
    assert stored["status"]["phase"] == "Running"  # status changes through the main resource are ignored


# --- + kube-scheduler, kube-controller-manager, kwok ---------------------------------------------------


def pod_body(name: str, gpus: int = 0, node_selector: dict[str, str] | None = None) -> client.V1Pod:
    limits = {"cpu": "500m", "memory": "256Mi"}
    if gpus:
        limits[GPU_RESOURCE] = str(gpus)
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(restart_policy="Never", node_selector=node_selector, containers=[client.V1Container(
            name="main", image="ghcr.io/melancia/predictor:test",
            resources=client.V1ResourceRequirements(limits=limits))]))


def test_fake_nodes_advertise_gpu_and_cpu(scheduling_cluster) -> None:
    nodes = {n.metadata.name: n for n in client.CoreV1Api(scheduling_cluster.client).list_node().items}
    assert nodes["gpu-node"].status.allocatable[GPU_RESOURCE] == "1"
    assert nodes["gpu-node"].metadata.labels[GPU_LABEL] == "true"
    assert GPU_RESOURCE not in nodes["cpu-node"].status.allocatable
    assert all(any(c.type == "Ready" and c.status == "True" for c in n.status.conditions) for n in nodes.values())


def test_scheduler_places_gpu_pod_on_gpu_node_and_leaves_too_large_pod_pending(scheduling_cluster) -> None:
    api = scheduling_cluster.client
    core = client.CoreV1Api(api)
    namespace = new_namespace(api)
    core.create_namespaced_pod(namespace, pod_body("gpu", gpus=1, node_selector={GPU_LABEL: "true"}))
    core.create_namespaced_pod(namespace, pod_body("two-gpus", gpus=2))

    pod = wait_for(lambda: (p := core.read_namespaced_pod("gpu", namespace)).status.phase == "Running" and p,
                   60, "GPU pod Running")
    assert pod.spec.node_name == "gpu-node"

    def unschedulable():
        conditions = core.read_namespaced_pod("two-gpus", namespace).status.conditions or []
        return next((c for c in conditions if c.type == "PodScheduled" and c.status == "False"), None)

    condition = wait_for(unschedulable, 60, "two-GPU pod marked unschedulable")
    assert condition.reason == "Unschedulable" and "nvidia.com/gpu" in condition.message
    assert core.read_namespaced_pod("two-gpus", namespace).spec.node_name is None
    # give the GPU back: the cluster is shared by the session's other tests
    for name in ("gpu", "two-gpus"):
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
    wait_for(lambda: not core.list_namespaced_pod(namespace).items, 60, "pods deleted")


def test_job_runs_to_completion_on_fake_cpu_node(scheduling_cluster) -> None:
    """The Job controller creates the pod, the scheduler places it on the CPU node (the GPU node is
    excluded by the selector), kwok runs and completes it, the Job controller marks the Job Complete."""
    api = scheduling_cluster.client
    batch = client.BatchV1Api(api)
    namespace = new_namespace(api)
    batch.create_namespaced_job(namespace, job_body("train", resources={"cpu": "1"},
                                                    node_selector={"kubernetes.io/hostname": "cpu-node"}))

    def complete():
        status = batch.read_namespaced_job_status("train", namespace).status
        return any(c.type == "Complete" and c.status == "True" for c in status.conditions or []) and status

    status = wait_for(complete, 90, "Job Complete")
    assert status.succeeded == 1
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector="job-name=train").items
    assert [p.spec.node_name for p in pods] == ["cpu-node"]
    assert pods[0].status.phase == "Succeeded"
