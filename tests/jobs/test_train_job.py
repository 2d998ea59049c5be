"""The training Job's entry point, run as the container runs it: a separate process."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from melancia.jobs.train import main
from tests.training.conftest import save_tiny_llama, write_splits


def _job_config(tmp_path: Path, model: Path, splits: Path, **fields) -> Path:
    config = {"base_model": str(model), "dataset_dir": str(splits), "run_name": "job", "max_seq_length": 512,
              "tokens_per_batch": 1024, "max_steps": 24, "eval_every": 6, "save_every": 3, "keep_checkpoints": 10,
              "learning_rate": 5e-3, "warmup_ratio": 0.0, "lora": {"dropout": 0.1},
              "export": {"merged": False, "gguf": False}, "tracking": {"registered_model": None}, **fields}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _start(config: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "MELANCIA_TRAIN_CONFIG": str(config), "MELANCIA_OUTPUT_DIR": str(out)}
    return subprocess.Popen([sys.executable, "-m", "melancia.jobs.train"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _losses(out: Path) -> list[tuple[int, float]]:
    history = json.loads((out / "history.json").read_text())
    return [(h["step"], h.get("train_loss", h.get("eval_loss"))) for h in history]


@pytest.mark.integration
def test_resume_after_kill_ends_like_an_uninterrupted_run(tiny_tokenizer, tmp_path):
    model = save_tiny_llama(tiny_tokenizer, tmp_path / "model", hidden=192, layers=4)  # slow enough to kill
    splits = write_splits(tmp_path / "splits", train=96)
    config = _job_config(tmp_path, model, splits)

    straight = _start(config, tmp_path / "straight")
    assert straight.wait(timeout=600) == 0, straight.stdout.read()

    interrupted = _start(config, tmp_path / "killed")
    checkpoint = tmp_path / "killed/checkpoints/step-000006"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and time.monotonic() < deadline and interrupted.poll() is None:
        time.sleep(0.02)
    assert interrupted.poll() is None, "the run finished before it could be killed"
    interrupted.send_signal(signal.SIGKILL)
    interrupted.wait()
    assert not (tmp_path / "killed/history.json").exists()

    resumed = _start(config, tmp_path / "killed")  # the restarted pod: --resume auto
    output = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, output
    assert "resuming from" in output
    straight_losses, resumed_losses = _losses(tmp_path / "straight"), _losses(tmp_path / "killed")
    assert [s for s, _ in resumed_losses] == [s for s, _ in straight_losses]
    assert [v for _, v in resumed_losses] == pytest.approx([v for _, v in straight_losses], rel=1e-5)


def test_a_failing_job_exits_non_zero_with_one_line_in_the_termination_log(tmp_path, monkeypatch, capsys):
    log = tmp_path / "termination-log"
    log.write_text("")
    monkeypatch.setenv("MELANCIA_TERMINATION_LOG", str(log))
    config = tmp_path / "bad.yaml"
    config.write_text("base_model: packaged:smollm2\nlearning_rat: 0.1\n")
    assert main(["--config", str(config)]) == 1
    reason = log.read_text()
    assert reason.count("\n") == 1 and "bad.yaml:2: unknown field 'learning_rat'" in reason
    assert "Traceback" not in capsys.readouterr().err


def test_job_reads_config_and_overrides_from_the_environment(tiny_tokenizer, tmp_path, monkeypatch):
    model = save_tiny_llama(tiny_tokenizer, tmp_path / "model")
    splits = write_splits(tmp_path / "splits", train=16, valid=4)
    monkeypatch.setenv("MELANCIA_TRAIN_CONFIG", str(_job_config(tmp_path, model, splits)))
    monkeypatch.setenv("MELANCIA_TRAIN_SET", "max_steps=2; eval_every=1")
    monkeypatch.setenv("MELANCIA_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("MELANCIA_TERMINATION_LOG", str(tmp_path / "absent"))
    assert main([]) == 0
    assert [h["step"] for h in json.loads((tmp_path / "out/history.json").read_text()) if "eval_loss" in h] == [0, 1, 2]
    assert not (tmp_path / "absent").exists()  # written only where Kubernetes provides it
