"""Train a tiny model, evaluate it against its base, record the verdict, promote only what passed."""

import json
from pathlib import Path

import pytest

from melancia.evaluation.config import EvalConfig, GateCheck
from melancia.evaluation.pipeline import run_evaluation
from melancia.evaluation.promotion import PromotionError, choose_baseline, promote
from melancia.jobs.evaluate import main as evaluate_job
from melancia.tracking import RunRecord, TrackingConfig, find_run_record
from melancia.training.trainer import train
from tests.training.conftest import save_tiny_llama, tiny_train_config, write_splits


@pytest.fixture
def trained_run(tiny_tokenizer, tmp_path):
    model = save_tiny_llama(tiny_tokenizer, tmp_path / "base")
    splits = write_splits(tmp_path / "splits", train=24, valid=4)
    (splits / "heldout.jsonl").write_text((splits / "valid.jsonl").read_text())
    result = train(tiny_train_config(model, splits, tmp_path / "run", max_steps=4, eval_every=4))
    return model, splits, tmp_path / "run", result


def _config(splits, gate):
    return EvalConfig(dataset=splits / "heldout.jsonl", max_examples=3, max_tokens=6, gguf_type="f32", gate=gate,
                      tracking=TrackingConfig(registered_model="tiny-assistant"))


@pytest.mark.integration
def test_candidate_vs_base_report_verdict_and_promotion(trained_run, tmp_path):
    from mlflow import MlflowClient

    base, splits, run_dir, trained = trained_run
    passing = _config(splits, [GateCheck("perplexity", max_delta=0.0), GateCheck("rougeL", min=0.0)])
    outcome = run_evaluation(passing, str(run_dir), str(base), out_dir=tmp_path / "report")
    report = json.loads(outcome.files["json"].read_text())
    candidate, baseline = report["models"]["candidate"], report["models"]["baseline"]
    assert candidate["kind"] == "gguf" and baseline["kind"] == "transformers"
    assert len(candidate["examples"]) == 3 and set(candidate["per_category"]) <= {"mensuracao", "metricas",
                                                                                   "otimizacao", "plataformas"}
    for key in ("rougeL", "semantic_similarity", "bertscore_f1", "fact_coverage", "perplexity", "latency_p50_s",
                "tokens_per_s"):
        assert candidate[key] is not None, key
    assert candidate["perplexity"] < baseline["perplexity"]  # trained on this material: references are likelier
    assert outcome.verdict == "passed" and (tmp_path / "report/report.html").exists()

    client = MlflowClient()
    version = client.get_model_version("tiny-assistant", trained.registered_version)
    assert version.tags["melancia.gate"] == "passed"
    assert client.get_run(outcome.eval_run_id).data.metrics["delta.perplexity"] < 0
    record = find_run_record(run_dir)
    assert choose_baseline(record) == str(base)  # no champion yet: the base model
    promotion = promote(record)
    assert (promotion.version, promotion.previous) == (trained.registered_version, None)
    assert str(client.get_model_version_by_alias("tiny-assistant", "champion").version) == trained.registered_version
    assert choose_baseline(record) == str(base)  # the champion is this very run: still the base
    later = RunRecord(run_name="later", base_model=str(base), registered_model="tiny-assistant",
                      tracking_uri=record.tracking_uri, folder=tmp_path / "later")
    assert Path(choose_baseline(later)).resolve() == run_dir.resolve()  # the next run meets the champion

    failing = _config(splits, [GateCheck("rougeL", min=2.0)])
    assert run_evaluation(failing, str(run_dir), str(base), out_dir=tmp_path / "report2").verdict == "failed"
    with pytest.raises(PromotionError, match="evaluation gate: failed"):
        promote(record)


def test_a_run_that_registered_nothing_is_compared_with_its_base_and_cannot_be_promoted():
    run = RunRecord(run_name="local", base_model="packaged:smollm2")
    assert choose_baseline(run) == "packaged:smollm2"
    with pytest.raises(PromotionError, match="registered no model version"):
        promote(run)


@pytest.mark.integration
def test_evaluate_job_prints_a_json_verdict_and_exits_by_the_gate(trained_run, tmp_path, monkeypatch, capsys):
    base, splits, run_dir, _ = trained_run
    log = tmp_path / "termination-log"
    log.write_text("")
    monkeypatch.setenv("MELANCIA_TERMINATION_LOG", str(log))
    config = tmp_path / "eval.yaml"
    config.write_text(f"dataset: {splits / 'heldout.jsonl'}\nmax_examples: 2\nmax_tokens: 4\ngguf_type: f32\n"
                      "semantic: false\ngate:\n  - {metric: rougeL, min: 2.0}\n")
    assert evaluate_job(["--run-dir", str(run_dir), "--config", str(config)]) == 1
    verdict = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert verdict["verdict"] == "failed" and verdict["failed_checks"] == ["rougeL >= 2"], verdict
    assert verdict["baseline"] == str(base)  # no champion yet: the base model
    assert json.loads(log.read_text()) == verdict

    assert evaluate_job(["--run-dir", str(tmp_path / "nowhere"), "--config", str(config)]) == 1
    assert json.loads(log.read_text())["verdict"] == "error"
