"""skaffold.yaml, the kind cluster, `make kind-e2e` and its workflow: checked against skaffold's published
schema and against the charts and manifests the other tests render and validate."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.charts.helm import render
from tests.k8s.fixtures import assets_dir

REPO = Path(__file__).resolve().parents[2]
SKAFFOLD = yaml.safe_load((REPO / "skaffold.yaml").read_text())
E2E_SCRIPT = (REPO / "scripts/kind-e2e.sh").read_text()


def skaffold_schema() -> dict:
    version = SKAFFOLD["apiVersion"].split("/", 1)[1]
    path = assets_dir() / "schemas" / f"{version}.json"
    if not path.is_file():
        pytest.fail(f"{path} missing: run scripts/test-assets.sh (it fetches skaffold's schemas)")
    return json.loads(path.read_text())


def test_skaffold_config_matches_the_published_schema():
    import jsonschema

    schema = skaffold_schema()
    jsonschema.validate(SKAFFOLD, schema)  # raises with the path of the offending field
    broken = {**SKAFFOLD, "deploy": {**SKAFFOLD["deploy"], "helm": {"releases": [{"chart": "x"}]}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_skaffold_builds_every_image_the_charts_run(helm, charts):
    built = {a["image"]: a["docker"]["dockerfile"] for a in SKAFFOLD["build"]["artifacts"]}
    for dockerfile in built.values():
        assert (REPO / dockerfile).is_file(), dockerfile
    objects = render(helm, charts, "melancia")
    images = {c["image"].rsplit(":", 1)[0] for o in objects for c in _containers(o)} - {"ghcr.io/mlflow/mlflow",
                                                                                        "chromadb/chroma"}
    assert images <= set(built), images - set(built)
    registry = next(p for p in SKAFFOLD["profiles"] if p["name"] == "registry")
    assert {a["image"] for a in registry["build"]["artifacts"]} >= set(built) | {"ghcr.io/melancia/trainer"}


def test_skaffold_value_overrides_exist_in_the_chart(helm, charts):
    release = SKAFFOLD["deploy"]["helm"]["releases"][0]
    assert (REPO / release["chartPath"]).is_dir() and all((REPO / f).is_file() for f in release["valuesFiles"])
    sets = [f"{key}=example" for key in release["setValueTemplates"]]
    objects = render(helm, charts, "melancia", None, *(x for s in sets for x in ("--set", s)))
    images = {c["image"] for o in objects for c in _containers(o)}
    assert "example:example" in images  # the overridden repository and tag reach the rendered workloads
    forwarded = {(p["resourceName"], p["port"]) for p in SKAFFOLD["portForward"]}
    services = {(o["metadata"]["name"], port["port"]) for o in objects if o["kind"] == "Service"
                for port in o["spec"]["ports"]}
    assert ("melancia-api", 8000) in forwarded and ("melancia-api", 8000) in services


def _containers(obj: dict) -> list[dict]:
    spec = obj.get("spec", {})
    pod = spec.get("template", {}).get("spec") or spec.get("predictor") or {}
    return pod.get("containers", [])


def test_kind_e2e_uses_the_tested_files_and_images():
    for path in re.findall(r"(?:manifests|charts|images)/[\w./-]+\.ya?ml", E2E_SCRIPT):
        assert (REPO / path).is_file(), path
    built = set(re.search(r"for image in ([\w -]+); do", E2E_SCRIPT)[1].split())
    e2e = list(yaml.safe_load_all((REPO / "manifests/kind/e2e.yaml").read_text()))
    used = {c["image"] for doc in e2e if doc["kind"] == "Job" for c in doc["spec"]["template"]["spec"]["containers"]}
    run = next(doc for doc in e2e if doc["kind"] == "TrainingRun")
    used |= set(run["spec"]["images"].values())
    assert {image.split("/")[-1].split(":")[0] for image in used} <= built
    kind_values = yaml.safe_load((REPO / "charts/melancia/values-kind.yaml").read_text())
    for component in ("melancia-api", "melancia-predictor", "melancia-operator"):
        image = kind_values[component]["image"]
        assert image["pullPolicy"] == "Never" and image["repository"].split("/")[-1] in built
    cluster = yaml.safe_load((REPO / "manifests/kind-cluster.yaml").read_text())
    assert cluster["kind"] == "Cluster" and cluster["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert f"name: {cluster['name']}" in (REPO / "manifests/kind-cluster.yaml").read_text()
    assert f"kind-{cluster['name']}" == next(p for p in SKAFFOLD["profiles"] if p["name"] == "kind")["activation"][0]["kubeContext"]


def test_make_and_the_workflow_run_the_same_script():
    assert "kind-e2e:\n\t./scripts/kind-e2e.sh" in (REPO / "Makefile").read_text()
    workflow = yaml.safe_load((REPO / ".github/workflows/kind-e2e.yml").read_text())
    steps = [s.get("run", "") for s in workflow["jobs"]["kind-e2e"]["steps"]]
    assert "make kind-e2e" in steps


def test_one_kserve_version_for_the_sdk_the_crds_the_controller_and_kind():
    from importlib.metadata import version

    from localcluster.config import read_versions

    kserve = read_versions()["KSERVE_VERSION"]  # what the CRDs, the controller and kind-e2e are taken at
    minor = ".".join(kserve.lstrip("v").split(".")[:2])
    assert ".".join(version("kserve").split(".")[:2]) == minor, f"the kserve SDK is {version('kserve')}, not {kserve}"
    pin = next(r for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
               ["predictor"] if r.startswith("kserve"))
    assert f">={minor}," in pin, pin
    assert f"kserve={kserve}" in (assets_dir() / ".stamp").read_text()
    assert ". scripts/versions.env" in E2E_SCRIPT and "$KSERVE_VERSION" in E2E_SCRIPT
