"""The Helm charts with a real Helm: lint, render every profile, validate against the Kubernetes schemas,
and (``k8s``) server-side dry run and ``helm install`` of the umbrella chart into the test control plane."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.charts.helm import profile_args, render, run, tool_dir
from tests.k8s.fixtures import assets_dir
from tests.k8s.crds import install_crd

REPO = Path(__file__).resolve().parents[2]
CHARTS = ["mlflow", "chromadb", "melancia-api", "melancia-predictor", "melancia-operator", "melancia"]
PROFILES = [None, "values-kind.yaml", "values-local.yaml", "values-production.yaml"]
CUSTOM_KINDS = {"InferenceService", "ServiceMonitor", "PodMonitor", "TrainingRun"}
KUBERNETES_VERSION = "1.35.0"  # the kubectl/Helm client generation; the test API server is 1.37


def cases():
    for chart in CHARTS:
        for profile in PROFILES if chart == "melancia" else [None]:
            yield pytest.param(chart, profile, id=f"{chart}-{profile or 'default'}")


@pytest.mark.parametrize("chart, profile", list(cases()))
def test_lints_renders_and_validates(helm, charts, chart, profile):
    lint = run(helm, "lint", "--strict", str(charts / chart), *profile_args(charts, chart, profile), check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    import kubernetes_validate

    objects = render(helm, charts, chart, profile)
    assert objects
    for obj in objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue  # validated by the API server with the upstream CRDs (k8s tests below)
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        spec = obj.get("spec", {}).get("template", {}).get("spec")
        if spec:  # every workload runs as non-root with resources and probes
            assert spec["securityContext"]["runAsNonRoot"] is True, obj["metadata"]["name"]
            for container in spec["containers"]:
                assert container["resources"]["limits"], obj["metadata"]["name"]
                assert "livenessProbe" in container, obj["metadata"]["name"]


def test_the_umbrella_installs_everything_with_consistent_names(helm, charts):
    objects = {(o["kind"], o["metadata"]["name"]) for o in render(helm, charts, "melancia", "values-production.yaml")}
    assert {("Deployment", "melancia-mlflow"), ("StatefulSet", "melancia-chromadb"), ("Deployment", "melancia-api"),
            ("InferenceService", "melancia"), ("Deployment", "melancia-operator"),
            ("ServiceMonitor", "melancia-api"), ("PodMonitor", "melancia-predictor"),
            ("ConfigMap", "melancia-grafana-dashboard")} <= objects
    predictor = next(o for o in render(helm, charts, "melancia") if o["kind"] == "InferenceService")
    env = {e["name"]: e["value"] for e in predictor["spec"]["predictor"]["containers"][0]["env"]}
    services = {o["metadata"]["name"]: o for o in render(helm, charts, "melancia") if o["kind"] == "Service"}
    assert env["MLFLOW_TRACKING_URI"] == "http://melancia-mlflow:5000" and "melancia-mlflow" in services
    assert env["MELANCIA_CHROMA_URL"] == "http://melancia-chromadb:8000" and "melancia-chromadb" in services


def test_what_running_pods_needed_stays_in_the_local_profile(helm, charts):
    # Each was found on the real node (tests/cluster): MLflow's 4 default workers and its job runner with
    # eight huey consumers were OOMKilled under a 1 GiB limit; the predictor was restarted by its liveness
    # probe while it was still loading its models.
    objects = render(helm, charts, "melancia", "values-local.yaml")
    mlflow = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "melancia-mlflow")
    container = mlflow["spec"]["template"]["spec"]["containers"][0]
    assert "--workers 1" in container["args"][0]
    assert {"name": "MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "value": "false"} in container["env"]
    predictor = next(o for o in objects if o["kind"] == "InferenceService")["spec"]["predictor"]["containers"][0]
    startup = predictor["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
    assert "initialDelaySeconds" not in predictor["livenessProbe"]


@pytest.mark.parametrize("release", ["melancia", "shop"])
def test_the_install_notes_name_the_api_resources_that_exist(helm, charts, release):
    # The notes told users to port-forward svc/melancia-melancia-api, a Service no release creates.
    notes = run(helm, "install", release, str(charts / "melancia"), "--dry-run=client", "--namespace", "ns").stdout
    notes = notes[notes.index("NOTES:"):]
    out = run(helm, "template", release, str(charts / "melancia"), "--namespace", "ns").stdout
    api = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(out) if d and "api" in d["metadata"]["name"]}
    for kind, short in (("Service", "svc"), ("Deployment", "deploy")):
        named = re.findall(rf"{short}/([a-z0-9-]+)", notes)
        assert named and all((kind, name) in api for name in named), (named, api)


def test_production_secrets_come_from_existing_secrets(helm, charts):
    objects = render(helm, charts, "melancia", "values-production.yaml")
    api = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "melancia-api")
    env = {e["name"]: e for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MELANCIA_API_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "melancia-api-db",
                                                                              "key": "database-url"}
    assert env["MELANCIA_API_REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "melancia-redis"
    assert not [o for o in objects if o["kind"] == "Secret"]  # the charts never create secrets


@pytest.mark.parametrize("chart, values, message", [
    ("melancia-api", ["--set", "replicas=0"], "/replicas"),
    ("melancia-api", ["--set", "image.pullPolicy=Sometimes"], "pullPolicy"),
    ("melancia-predictor", ["--set", "deploymentMode=Batch"], "deploymentMode"),
    ("mlflow", ["--set", "unknownKey=1"], "unknownKey"),
])
def test_the_schema_refuses_bad_values(helm, charts, chart, values, message):
    result = run(helm, "template", "x", str(charts / chart), *values, check=False)
    assert result.returncode != 0 and message in result.stderr


def test_dashboard_queries_only_metrics_the_code_exports(helm, charts):
    import json
    import re

    dashboard = json.loads((REPO / "charts/melancia/dashboards/melancia.json").read_text())
    used = {m for p in dashboard["panels"] for t in p["targets"] for m in re.findall(r"melancia_[a-z_]+", t["expr"])}
    code = "".join(p.read_text() for p in (REPO / "melancia").rglob("metrics.py"))
    exported = set(re.findall(r'"(melancia_[a-z_]+)"', code))
    suffixes = ("_bucket", "_total", "_count", "_sum")
    for metric in used:
        base = next((metric[: -len(s)] for s in suffixes if metric.endswith(s) and metric[: -len(s)] in exported), metric)
        assert base in exported or metric in exported, metric


def test_rendered_operator_manifests_are_current(helm):
    rendered = subprocess.run([str(REPO / "scripts/render-manifests.sh")], capture_output=True, text=True,
                              env={**os.environ, "HELM": str(helm)}, cwd=REPO)
    assert rendered.returncode == 0, rendered.stderr
    diff = subprocess.run(["git", "diff", "--exit-code", "--", "manifests/operator"], cwd=REPO, capture_output=True,
                          text=True)
    assert diff.returncode == 0, "manifests/operator is stale; run scripts/render-manifests.sh\n" + diff.stdout


def upstream_crds() -> list[Path]:
    return sorted((assets_dir() / "crds").glob("*.yaml"))


@pytest.mark.k8s
def test_server_side_dry_run_and_helm_install_into_the_control_plane(helm, charts, control_plane, tmp_path):
    kubectl = tool_dir() / "kubectl"
    env = {**os.environ, "KUBECONFIG": str(control_plane.kubeconfig)}

    def k(*args: str) -> str:
        result = subprocess.run([str(kubectl), *args], capture_output=True, text=True, env=env)
        assert result.returncode == 0, f"kubectl {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    for crd in [*upstream_crds(), REPO / "charts/melancia-operator/crds/trainingrun.yaml"]:
        install_crd(control_plane.client, crd)
    k("create", "namespace", "melancia")
    for profile in PROFILES:
        rendered = tmp_path / f"{profile or 'default'}.yaml"
        rendered.write_text(run(helm, "template", "melancia", str(charts / "melancia"), "--namespace", "melancia",
                                *profile_args(charts, "melancia", profile)).stdout)
        k("apply", "--dry-run=server", "-n", "melancia", "-f", str(rendered))
    install = run(helm, "install", "melancia", str(charts / "melancia"), "--namespace", "melancia",
                  "-f", str(charts / "melancia/values-kind.yaml"), "--kubeconfig", str(control_plane.kubeconfig))
    assert "STATUS: deployed" in install.stdout
    found = k("get", "deployments,statefulsets,services,inferenceservices,configmaps", "-n", "melancia", "-o", "name")
    for name in ("deployment.apps/melancia-api", "deployment.apps/melancia-mlflow", "statefulset.apps/melancia-chromadb",
                 "deployment.apps/melancia-operator", "inferenceservice.serving.kserve.io/melancia",
                 "configmap/melancia-router"):
        assert name in found, found


@pytest.mark.parametrize("profile", PROFILES)
def test_the_router_config_in_the_predictor_chart_loads(helm, charts, profile, tmp_path):
    from melancia.router.config import load_router_config

    objects = render(helm, charts, "melancia", profile)
    configmap = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-router"))
    path = tmp_path / "router.yaml"
    path.write_text(configmap["data"]["router.yaml"])
    config = load_router_config(path)  # the same loader, with file:line errors, as `melancia serve predictor`
    assert config.providers and config.tiers
    chained = {name for tier in config.tiers.values() for arm in tier.arms for name in arm.chain}
    assert chained <= set(config.providers), chained - set(config.providers)


def test_the_trainingrun_crd_has_one_source():
    # manifests/crds/ (kubectl apply -f) links to the chart's crds/ (helm install): both suites read one file
    assert (REPO / "manifests/crds/trainingrun.yaml").resolve() == \
        (REPO / "charts/melancia-operator/crds/trainingrun.yaml").resolve()
