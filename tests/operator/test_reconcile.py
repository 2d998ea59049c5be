"""The operator's decisions as a pure function: GPU first, CPU fallback, gate, promotion, idempotence."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from melancia.operator.job_builders import eval_job, train_job
from melancia.operator.reconcile import JobState, Observation, parse_verdict, reconcile
from melancia.operator.spec import read_spec

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 25, 12, 0, 0)


def run(**spec):
    body = {"metadata": {"name": "acos-run", "namespace": "ml", "uid": "u-1"},
            "spec": {"baseModel": "packaged:smollm2", "dataset": {"path": "/data/splits", "pvc": "datasets"},
                     "output": {"pvc": "runs"}, "mlflowTrackingUri": "http://mlflow:5000",
                     "promotion": {"inferenceService": "melancia"}, **spec}}
    return read_spec(body)


def kinds(actions):
    return [a.kind for a in actions]


def test_gpu_job_has_selector_toleration_limits_owner_and_entry_point():
    job = train_job(run(), "gpu")
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert job["metadata"]["name"] == "acos-run-train-gpu" and job["metadata"]["namespace"] == "ml"
    assert job["metadata"]["ownerReferences"][0] == {"apiVersion": "melancia.io/v1alpha1", "kind": "TrainingRun",
                                                     "name": "acos-run", "uid": "u-1", "controller": True,
                                                     "blockOwnerDeletion": True}
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["command"] == ["python", "-m", "melancia.jobs.train"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MELANCIA_OUTPUT_DIR"] == "/mnt/melancia/runs/acos-run"
    assert "base_model=packaged:smollm2" in env["MELANCIA_TRAIN_SET"].split(";")
    assert env["MELANCIA_TRAIN_CONFIG"] == "configs/train/qwen2.5-0.5b-lora.yaml"
    cpu = train_job(run(), "cpu")["spec"]["template"]["spec"]
    assert "nodeSelector" not in cpu and "nvidia.com/gpu" not in cpu["containers"][0]["resources"]["limits"]
    assert cpu["containers"][0]["image"].endswith("trainer-cpu:0.1.0")


def test_eval_job_carries_the_gate_in_config_terms_and_never_retries():
    job = eval_job(run(evaluation={"gate": [{"metric": "fact_coverage", "minDelta": 0.03}]}))
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MELANCIA_RUN_DIR"] == "/mnt/melancia/runs/acos-run"
    gate = yaml.safe_load(env["MELANCIA_EVAL_SET"].split("gate=", 1)[1])
    assert gate == [{"metric": "fact_coverage", "min_delta": 0.03}] and job["spec"]["backoffLimit"] == 0


def test_a_new_run_trains_on_gpu_when_a_gpu_node_exists():
    actions = reconcile(run(), {}, Observation(gpu_nodes=1, now=NOW))
    assert kinds(actions) == ["create_job", "status", "event"]
    assert actions[0].payload["metadata"]["name"] == "acos-run-train-gpu"
    assert actions[1].payload["device"] == "gpu" and actions[1].payload["phase"] == "Training"


def test_prefer_without_gpu_nodes_goes_straight_to_cpu_and_says_why():
    actions = reconcile(run(), {}, Observation(gpu_nodes=0, now=NOW))
    assert actions[0].payload["metadata"]["name"] == "acos-run-train-cpu"
    fallback = [a for a in actions if a.kind == "status" and a.payload["condition"]["type"] == "FallbackToCPU"]
    assert fallback and "no node has nvidia.com/gpu" in fallback[0].payload["condition"]["message"]


def test_unschedulable_gpu_pod_falls_back_after_the_timeout_only():
    pending = JobState("acos-run-train-gpu", unschedulable_since=NOW - timedelta(seconds=100),
                       unschedulable_reason="0/2 nodes are available: 2 Insufficient nvidia.com/gpu")
    spec = run(fallbackTimeoutSeconds=300)
    assert reconcile(spec, {"phase": "Training"}, Observation(train_gpu=pending, gpu_nodes=1, now=NOW)) == []
    later = Observation(train_gpu=pending, gpu_nodes=1, now=NOW + timedelta(seconds=250))
    actions = reconcile(spec, {"phase": "Training"}, later)
    assert kinds(actions) == ["delete_job", "create_job", "status", "event"]
    assert actions[0].payload == "acos-run-train-gpu"
    assert actions[1].payload["metadata"]["name"] == "acos-run-train-cpu"
    assert "350 s > fallbackTimeoutSeconds 300" in actions[2].payload["condition"]["message"]


def test_require_waits_for_a_gpu_and_never_falls_back():
    pending = JobState("acos-run-train-gpu", unschedulable_since=NOW - timedelta(hours=3), unschedulable_reason="x")
    actions = reconcile(run(gpu="require"), {"phase": "Training"}, Observation(train_gpu=pending, gpu_nodes=0, now=NOW))
    assert kinds(actions) == ["status"] and actions[0].payload["condition"]["reason"] == "WaitingForGPU"


def test_training_success_starts_the_gate_and_failure_stops_with_the_reason():
    done = Observation(train_cpu=JobState("acos-run-train-cpu", succeeded=True), now=NOW)
    actions = reconcile(run(), {"phase": "Training"}, done)
    assert actions[0].kind == "create_job" and actions[0].payload["metadata"]["name"] == "acos-run-eval"
    failed = Observation(train_gpu=JobState("acos-run-train-gpu", failed=True,
                                            message="traceback...\nCUDA out of memory at 16384 tokens"), now=NOW)
    actions = reconcile(run(), {"phase": "Training"}, failed)
    assert actions[0].payload["phase"] == "Failed"
    assert actions[0].payload["condition"]["message"].endswith("CUDA out of memory at 16384 tokens")


def verdict(value: str, **extra) -> str:
    return "evaluation output\n" + json.dumps({"verdict": value, "registered_model": "melancia-assistant",
                                              "version": "7", "failed_checks": [], **extra})


def test_passing_gate_promotes_the_registered_version():
    seen = Observation(train_cpu=JobState("acos-run-train-cpu", succeeded=True),
                       evaluation=JobState("acos-run-eval", succeeded=True, message=verdict("passed")), now=NOW)
    actions = reconcile(run(), {"phase": "Evaluating"}, seen)
    assert kinds(actions) == ["status", "promote", "status", "event"]
    assert actions[1].payload == {"model": "melancia-assistant", "version": "7"}
    assert actions[2].payload["phase"] == "Promoted" and actions[2].payload["registeredVersion"] == "7"


def test_failing_gate_stops_with_the_failed_checks():
    message = verdict("failed", failed_checks=["fact_coverage: delta 0.010 < min_delta 0.030"])
    seen = Observation(evaluation=JobState("acos-run-eval", failed=True, message=message), now=NOW)
    actions = reconcile(run(), {"phase": "Evaluating"}, seen)
    assert actions[0].payload["phase"] == "GateFailed"
    assert actions[0].payload["gate"]["failedChecks"] == ["fact_coverage: delta 0.010 < min_delta 0.030"]
    assert "fact_coverage: delta 0.010" in actions[0].payload["condition"]["message"]


def test_terminal_runs_and_running_jobs_need_nothing():
    assert reconcile(run(), {"phase": "Promoted"}, Observation(now=NOW)) == []
    running = Observation(train_gpu=JobState("acos-run-train-gpu"), gpu_nodes=1, now=NOW)
    assert reconcile(run(), {"phase": "Training"}, running) == []
    evaluating = Observation(evaluation=JobState("acos-run-eval"), now=NOW)
    assert reconcile(run(), {"phase": "Evaluating"}, evaluating) == []


def test_same_observation_same_actions():
    seen = Observation(train_cpu=JobState("acos-run-train-cpu", succeeded=True), now=NOW)
    assert reconcile(run(), {"phase": "Training"}, seen) == reconcile(run(), {"phase": "Training"}, seen)


def test_verdict_is_read_from_the_last_json_line():
    assert parse_verdict(verdict("passed"))["version"] == "7"
    assert parse_verdict("Traceback ...\nValueError: boom") is None


def test_crd_defaults_match_the_operator_defaults():
    crd = yaml.safe_load((REPO / "manifests/crds/trainingrun.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    defaults = run()
    assert spec["gpu"]["default"] == defaults.gpu and spec["fallbackTimeoutSeconds"]["default"] == defaults.fallback_timeout_s
    assert spec["trainConfig"]["default"] == defaults.train_config
    assert spec["cpuTrainConfig"]["default"] == defaults.cpu_train_config
    assert spec["promotion"]["properties"]["registeredModel"]["default"] == defaults.registered_model
    assert spec["output"]["properties"]["path"]["default"] == defaults.output_root
    for path in (REPO / "configs/train" / Path(defaults.train_config).name, REPO / defaults.cpu_train_config):
        assert path.is_file()
    from melancia.evaluation.metric_registry import METRIC_NAMES

    gate_item = spec["evaluation"]["properties"]["gate"]["items"]["properties"]
    assert sorted(gate_item["metric"]["enum"]) == sorted(METRIC_NAMES)


def test_container_errors_are_reported_and_permanent_ones_fail_the_run():
    pulling = JobState("acos-run-train-gpu", waiting="ErrImagePull: registry.example/trainer:9 not found")
    actions = reconcile(run(), {"phase": "Training"}, Observation(train_gpu=pulling, gpu_nodes=1, now=NOW))
    assert kinds(actions) == ["status"] and actions[0].payload["phase"] == "Training"
    assert actions[0].payload["condition"]["reason"] == "ErrImagePull"
    broken = JobState("acos-run-eval", waiting="CreateContainerConfigError: secret mlflow-auth not found")
    actions = reconcile(run(), {"phase": "Evaluating"}, Observation(evaluation=broken, now=NOW))
    assert actions[0].payload["phase"] == "Failed" and "secret mlflow-auth" in actions[0].payload["condition"]["message"]


def test_plain_job_manifests_are_what_the_operator_creates(monkeypatch):
    from melancia.operator.plain_jobs import plain_jobs, render

    monkeypatch.chdir(REPO)
    for name, job in plain_jobs().items():
        assert (REPO / "jobs" / name).read_text(encoding="utf-8") == render(job), \
            f"jobs/{name} is stale: run python -m melancia.operator.plain_jobs"
