"""Training on a CUDA device: bfloat16 weights, fused AdamW, the same per-token loss as on CPU.

Marked ``gpu``: skipped where no CUDA device is visible (CI), run on a machine with one.
"""

from __future__ import annotations

import pytest

from melancia.training.trainer import train
from tests.training.conftest import tiny_train_config

pytestmark = pytest.mark.gpu


def test_training_on_cuda_runs_in_bf16_and_lowers_eval_loss(tiny_model_dir, tiny_splits, tmp_path):
    result = train(tiny_train_config(tiny_model_dir, tiny_splits, tmp_path / "run", device="cuda"))

    assert result.state.best_eval_loss < result.first_eval_loss - 0.1
    card = (tmp_path / "run" / "README.md").read_text()
    assert "cuda" in card and ("bf16" in card or "fp16" in card)
