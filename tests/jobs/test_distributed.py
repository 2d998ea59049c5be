"""Data-parallel training through ``accelerate launch``: two CPU processes talking over gloo."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.training.conftest import save_tiny_llama, write_splits


@pytest.mark.integration
def test_accelerate_launch_trains_with_two_processes(tiny_tokenizer, tmp_path):
    model = save_tiny_llama(tiny_tokenizer, tmp_path / "model")
    splits = write_splits(tmp_path / "splits", train=32, valid=8)
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({
        "base_model": str(model), "dataset_dir": str(splits), "output_dir": str(tmp_path / "out"), "run_name": "ddp",
        "max_seq_length": 512, "tokens_per_batch": 1024, "gradient_accumulation_steps": 2, "max_steps": 4,
        "eval_every": 2, "save_every": 2, "learning_rate": 1e-2, "warmup_ratio": 0.0, "device": "cpu",
        "export": {"merged": False, "gguf": False}, "tracking": {"registered_model": None}}))
    launcher = shutil.which("accelerate", path=os.path.dirname(sys.executable))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true"}
    done = subprocess.run([launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
                           "-m", "melancia.jobs.train", "--config", str(config)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    params = subprocess.run([sys.executable, "-c", "import mlflow, sys; r = mlflow.search_runs("
                             "experiment_names=['melancia-sft'], output_format='list')[0]; "
                             "print(r.data.params['derived.world_size'])"], capture_output=True, text=True, env=env)
    assert params.stdout.strip() == "2", params.stderr[-2000:]
    history = json.loads((tmp_path / "out/history.json").read_text())
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    assert len(evals) == 3 and evals[-1] < evals[0]
