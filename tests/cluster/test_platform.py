"""The platform on a real node: ``helm install`` of the umbrella chart into the one-node cluster, every
pod Ready, questions answered through the KServe endpoint and the API, then ``helm uninstall`` and
``down`` leaving the host as it was.

Traffic goes to the Service addresses of the cluster the session started (kube-proxy routes them from
the host as from a pod), never outside the machine.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest

from localcluster import cluster, host
from localcluster.addons import kubectl
from localcluster.config import REPO
from tests.cluster.fixtures import TAG, LocalCluster

pytestmark = pytest.mark.cluster

NAMESPACE = "melancia"
RELEASE = "melancia"
IMAGES = {"mlflow": "mlflow", "chromadb": "chromadb", "melancia-predictor": "predictor",
          "melancia-api": "api", "melancia-operator": "operator"}


@dataclass(frozen=True)
class Release:
    cluster: LocalCluster
    install_s: float

    def kubectl(self, *args: str, check: bool = True) -> str:
        result = subprocess.run([*kubectl(self.cluster.config), "-n", NAMESPACE, *args], capture_output=True,
                                text=True, check=False, timeout=120)
        if check and result.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} failed: {result.stderr}", pytrace=False)
        return result.stdout

    def service_url(self, name: str) -> str:
        spec = json.loads(self.kubectl("get", "service", name, "-o", "json"))["spec"]
        return f"http://{spec['clusterIP']}:{spec['ports'][0]['port']}"


def helm(local: LocalCluster, *args: str, timeout_s: float = 1200) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(local.config.helm_bin / "helm"), f"--kubeconfig={local.config.kubeconfig}", *args],
                          capture_output=True, text=True, check=False, timeout=timeout_s, cwd=REPO)


@pytest.fixture(scope="module")
def release(local_cluster: LocalCluster) -> Iterator[Release]:
    """The umbrella chart installed with values-local.yaml and the images the session built, every pod Ready."""
    dependencies = helm(local_cluster, "dependency", "build", "charts/melancia")
    assert dependencies.returncode == 0, dependencies.stderr
    tags = [f"--set={chart}.image.tag={TAG}" for chart in IMAGES]
    started = time.monotonic()
    install = helm(local_cluster, "install", RELEASE, "charts/melancia", "--namespace", NAMESPACE,
                   "--create-namespace", "-f", "charts/melancia/values-local.yaml", *tags,
                   "--wait", "--timeout", "15m")
    if install.returncode != 0:
        pytest.fail(f"helm install failed: {install.stderr}\n{cluster.diagnose(local_cluster.config, NAMESPACE)}",
                    pytrace=False)
    yield Release(local_cluster, time.monotonic() - started)
    helm(local_cluster, "uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", "--timeout", "5m")


def _wait_inference_service_ready(release: Release, timeout_s: float = 600) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        isvc = json.loads(release.kubectl("get", "inferenceservice", "melancia", "-o", "json"))
        conditions = {c["type"]: c for c in isvc.get("status", {}).get("conditions", [])}
        if conditions.get("Ready", {}).get("status") == "True":
            return isvc
        if time.monotonic() > deadline:
            pytest.fail(f"InferenceService not Ready after {timeout_s:.0f} s: {json.dumps(conditions, indent=1)}\n"
                        f"{cluster.diagnose(release.cluster.config, NAMESPACE)}", pytrace=False)
        time.sleep(3)


def test_every_pod_is_ready_on_the_real_node_and_the_inference_service_too(release: Release):
    isvc = _wait_inference_service_ready(release)
    pods = json.loads(release.kubectl("get", "pods", "-o", "json"))["items"]
    components = {p["metadata"]["labels"].get("app.kubernetes.io/name") or p["metadata"]["labels"].get("app")
                  for p in pods}
    assert {"mlflow", "chromadb", "melancia-api", "melancia-operator"} <= components, components
    assert any(p["metadata"]["labels"].get("serving.kserve.io/inferenceservice") == "melancia" for p in pods)
    for pod in pods:
        name = pod["metadata"]["name"]
        assert pod["spec"]["nodeName"] == release.cluster.config.node_name, f"{name} not on the real node"
        assert pod["status"]["phase"] == "Running", (name, pod["status"])
        assert all(c["ready"] for c in pod["status"]["containerStatuses"]), (name, pod["status"])
        # Ready after a restart still hides a fault (an OOMKill at start-up, a crash before the index existed)
        restarted = {c["name"]: c.get("lastState") for c in pod["status"]["containerStatuses"] if c["restartCount"]}
        assert not restarted, f"{name} restarted: {restarted}"
    assert isvc["status"]["url"], isvc["status"]
    print(f"\nhelm install --wait: {release.install_s:.0f} s")


def test_the_kserve_v1_endpoint_answers_with_sources(release: Release):
    _wait_inference_service_ready(release)
    url = release.service_url("melancia-predictor")
    response = httpx.post(f"{url}/v1/models/melancia:predict", json={"instances": ["O que é ACOS?"]}, timeout=120)
    assert response.status_code == 200, response.text
    prediction = response.json()["predictions"][0]
    assert prediction["answer"].strip()
    assert prediction["sources"], prediction
    assert any("acos" in json.dumps(s, ensure_ascii=False).lower() for s in prediction["sources"])


def test_mlflow_answers_in_cluster_clients_by_its_service_name(release: Release):
    # MLflow 3.5+ answers 403 to Host headers it does not know; the predictor and the operator call it as
    # http://melancia-mlflow:5000 (the chart lists its Service names in MLFLOW_SERVER_ALLOWED_HOSTS).
    out = release.kubectl("exec", "deploy/melancia-api", "--", "python", "-c",
                          "import httpx; r = httpx.get('http://melancia-mlflow:5000/api/2.0/mlflow/"
                          "registered-models/search', timeout=30); print(r.status_code, r.text[:200])")
    assert out.startswith("200"), out


@pytest.fixture(scope="module")
def api_key(release: Release) -> str:
    """A free-tier key made inside the API pod, as an operator would (``melancia keys create``)."""
    out = release.kubectl("exec", "deploy/melancia-api", "--", "melancia", "keys", "create", "cluster-test",
                          "--tier", "free")
    return out.strip().splitlines()[-1]


def test_the_api_answers_through_the_predictor_with_the_openai_client(release: Release, api_key: str):
    _wait_inference_service_ready(release)
    client = openai.OpenAI(base_url=f"{release.service_url('melancia-api')}/v1", api_key=api_key,
                           timeout=180, max_retries=0)
    completion = client.chat.completions.create(model="melancia",
                                                messages=[{"role": "user", "content": "O que é ROAS?"}])
    assert completion.choices[0].message.content.strip()
    extension = completion.model_extra["melancia"]
    assert extension["sources"], extension
    assert extension["provider"] != "calculator"


def test_a_calculation_through_the_api_is_exact(release: Release, api_key: str):
    _wait_inference_service_ready(release)
    response = httpx.post(f"{release.service_url('melancia-api')}/api/v1/query", timeout=60,
                          headers={"X-API-Key": api_key},
                          json={"question": "gastei R$ 200 e vendi R$ 1.000, qual meu ACOS?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "20,00%" in body["answer"], body


def test_uninstall_then_down_leaves_the_host_as_it_was(release: Release, local_cluster: LocalCluster):
    uninstall = helm(local_cluster, "uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", "--timeout", "5m")
    assert uninstall.returncode == 0, uninstall.stderr
    assert not json.loads(release.kubectl("get", "pods", "-o", "json"))["items"]
    config = local_cluster.config
    cluster.down(config)
    assert not config.run.exists()
    after = host.snapshot(config)
    assert after == local_cluster.host_before
    leftovers = [line for line in open("/proc/self/mountinfo") if str(config.cache) in line]
    assert not leftovers, leftovers
