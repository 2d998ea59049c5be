"""Tiny random chat models and small splits of the bundled data, built in the test (no downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import REPO


def save_tiny_llama(tokenizer, out: Path, *, hidden: int = 64, layers: int = 2) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=2048, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def write_splits(out: Path, train: int = 48, valid: int = 8) -> Path:
    """The first curated examples of the bundled data as train.jsonl / valid.jsonl."""
    rows = [line for path in sorted((REPO / "data/datasets/train").glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    out.mkdir(parents=True, exist_ok=True)
    (out / "train.jsonl").write_text("\n".join(rows[:train]) + "\n", encoding="utf-8")
    (out / "valid.jsonl").write_text("\n".join(rows[train:train + valid]) + "\n", encoding="utf-8")
    return out


@pytest.fixture
def tiny_model_dir(tiny_tokenizer, tmp_path: Path) -> Path:
    return save_tiny_llama(tiny_tokenizer, tmp_path / "tiny-llama")


@pytest.fixture
def tiny_splits(tmp_path: Path) -> Path:
    return write_splits(tmp_path / "splits")


def tiny_train_config(model_dir: Path, splits: Path, out: Path, **fields):
    from melancia.tracking import TrackingConfig
    from melancia.training.config import ExportConfig, TrainConfig

    defaults = dict(base_model=str(model_dir), dataset_dir=splits, output_dir=out, run_name="tiny",
                    max_seq_length=512, tokens_per_batch=1024, max_steps=8, eval_every=4, save_every=4,
                    learning_rate=1e-2, warmup_ratio=0.0, export=ExportConfig(gguf_type="f32"),
                    tracking=TrackingConfig(registered_model="tiny-assistant"))
    defaults.update(fields)
    return TrainConfig(**defaults)
