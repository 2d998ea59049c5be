"""The README's main command (``melancia run``) on the embedded defaults."""

import io
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from melancia import run as local_run
from melancia.cli import app
from melancia.evaluation.pipeline import EvalOutcome
from melancia.evaluation.promotion import Promotion
from melancia.run import RunConfig, run_local
from melancia.tracking import RunRecord

REPO = Path(__file__).resolve().parents[1]


def test_each_stage_gets_what_the_stage_before_made_and_the_config_is_left_alone(tmp_path, monkeypatch):
    splits, run_dir = tmp_path / "splits", tmp_path / "run"
    seen = {}
    record = RunRecord(run_name="r", base_model="packaged:smollm2", registered_model="m", registered_version="3",
                       folder=run_dir)

    def fake_train(config, console):
        seen["train_dataset_dir"] = config.dataset_dir
        return type("Result", (), {"output_dir": run_dir, "exports": None})()

    def fake_evaluation(config, candidate, baseline, console):
        seen.update(eval_dataset=config.dataset, candidate=candidate, baseline=baseline)
        return EvalOutcome({}, {}, "passed", "eval-run")

    monkeypatch.setattr(local_run, "build_datasets", lambda config, allow_rejects: type("S", (), {"out_dir": splits})())
    monkeypatch.setattr(local_run, "print_summary", lambda summary, console: None)
    monkeypatch.setattr(local_run, "train", fake_train)
    monkeypatch.setattr(local_run, "print_training_summary", lambda result, console: None)
    monkeypatch.setattr(local_run, "read_run_record", lambda folder: record if folder == run_dir else None)
    monkeypatch.setattr(local_run, "choose_baseline", lambda run: f"champion-of-{run.registered_model}")
    monkeypatch.setattr(local_run, "run_evaluation", fake_evaluation)
    monkeypatch.setattr(local_run, "promote", lambda run: Promotion(run.registered_model, run.registered_version,
                                                                     "champion", None))
    config = RunConfig(stages=["data", "train", "eval"])
    assert run_local(config, console=local_run.Console(file=io.StringIO())) == 0

    assert seen == {"train_dataset_dir": splits, "eval_dataset": splits / "heldout.jsonl",
                    "candidate": str(run_dir), "baseline": "champion-of-m"}
    assert config.train.dataset_dir is None and config.eval.dataset is None


@pytest.mark.integration
def test_local_run_builds_data_trains_and_evaluates(melancia_home, monkeypatch):
    monkeypatch.chdir(REPO)
    short = ["train.max_steps=2", "train.tokens_per_batch=1024", "train.eval_every=2", "train.eval_examples=4",
             'compare_questions=["O que é ACOS?"]', "eval.max_examples=3", "eval.max_tokens=16",
             "docs_dir=tests/data/fixture/posts", "eval.retrieval_queries=null"]
    result = CliRunner().invoke(app, ["run", "--config", "configs/run/local.yaml", *(f"--set={s}" for s in short)],
                                env={"COLUMNS": "160", "MELANCIA_NO_SERVE": "1"})
    assert result.exit_code == 0, result.output
    run = melancia_home / "runs/smollm2-lora"
    assert (run / "gguf/smollm2-lora.gguf").exists() and (run / "adapter/adapter_model.safetensors").exists()
    assert "eval loss" in result.output and "base vs fine-tuned" in result.output and "O que é ACOS?" in result.output
    assert "evaluation on 3 examples" in result.output and "gate:" in result.output
    assert len(list((melancia_home / "reports").glob("eval-*/report.html"))) == 1
    assert "chunks from 2 documents" in result.output and (melancia_home / "index/manifest.json").exists()
    assert "not serving (--no-serve / MELANCIA_NO_SERVE=1)" in result.output
    assert "Dataset summary" in result.output and "rejected rows: 0" in result.output
    out = melancia_home / "datasets"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["heldout"] >= 60 and manifest["counts"]["train"] >= 300
    assert manifest["rejected"] == 0 and manifest["removed"]["leak"] == 0
    assert os.path.getsize(out / "stats.png") > 10_000


@pytest.mark.integration
def test_serve_stage_puts_the_api_in_front_of_a_running_predictor(tmp_path, melancia_home):
    import re
    import subprocess
    import sys
    import time

    import httpx

    from tests.servers import free_port, stop

    router = tmp_path / "router.yaml"
    router.write_text("providers:\n  local: {kind: fake, model: tuned, reply: 'Resposta: {question}'}\n"
                      "tiers:\n  free: {arms: [{name: a, chain: [local]}]}\nretrieval: {enabled: false}\n")
    api_port, predictor_port = free_port(), free_port()
    log = tmp_path / "run.log"
    with log.open("w") as sink:
        process = subprocess.Popen([sys.executable, "-m", "melancia.cli", "run", "--set", "stages=[serve]",
                                    "--set", f"router_config={router}", "--set", f"api_port={api_port}",
                                    "--set", f"predictor_port={predictor_port}"], cwd=REPO, stdout=sink,
                                   stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "300"},
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not re.search(r"session: (mk_\S+)", log.read_text()):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        key = re.search(r"session: (mk_\S+)", log.read_text())[1]
        url = f"http://127.0.0.1:{api_port}"
        while True:
            try:
                if httpx.get(f"{url}/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        answer = httpx.post(f"{url}/api/v1/query", json={"question": "O que é ACOS?"}, headers={"X-API-Key": key},
                            timeout=30).json()
        assert answer["answer"] == "Resposta: O que é ACOS?" and answer["model_name"] == "tuned"
        with httpx.stream("POST", f"{url}/api/v1/query/stream", json={"question": "O que é ROAS?"},
                          headers={"X-API-Key": key}, timeout=30) as response:
            events = response.read().decode()
        assert "event: token" in events and "event: done" in events and "Resposta: O que é ROAS?" in events
        models = httpx.get(f"{url}/api/v1/models", headers={"X-API-Key": key}).json()
        assert [(m["provider"], m["status"]) for m in models] == [("local", "available")]
        assert httpx.get(f"http://127.0.0.1:{predictor_port}/v1/models/melancia").json()["ready"] is True
    finally:
        # uvicorn finishes its graceful shutdown, then re-raises SIGTERM so the exit status says why it ended
        assert stop(process) == -15, log.read_text()
    assert "Application shutdown complete" in log.read_text()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{predictor_port}/v1/models/melancia", timeout=2)
