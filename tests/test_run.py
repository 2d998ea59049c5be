"""The README's main command (``melancia run``) on the embedded defaults."""

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from melancia.cli import app

REPO = Path(__file__).resolve().parents[1]


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
