"""Everything a training run builds before its first step, and where it starts from: the accelerator and
placement, the tokenizer, the encoded train and validation splits, the fixed plan of steps, the base
model with its adapters, the optimizer and learning-rate schedule; then either a fresh state or, with
``resume``, the newest checkpoint, refused when it was written for another data order (the plan's
fingerprint). :mod:`melancia.training.trainer` runs the loop over what this returns."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from melancia.data.io import DataError
from melancia.errors import TrainingSetupError
from melancia.training import checkpoint as ckpt
from melancia.training.batches import EncodedSplit, Step, encode_split, plan_steps
from melancia.training.config import TrainConfig
from melancia.training.loss import PackedLMLoss
from melancia.training.model import Placement, add_adapters, choose_placement, load_base


@dataclass
class PreparedRun:
    """The objects of one training run, built once and shared by the loop's helpers."""

    config: TrainConfig
    accelerator: Any
    placement: Placement
    tokenizer: Any
    train_split: EncodedSplit
    valid_split: EncodedSplit | None
    steps: list[Step]
    model: Any
    loss_module: Any
    optimizer: Any
    scheduler: Any
    output_dir: Path
    console: Console

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def checkpoints(self) -> Path:
        return self.output_dir / "checkpoints"

    def unwrapped_model(self) -> Any:
        """The model with its adapters, out of the accelerator's wrapping of the loss module."""
        return self.accelerator.unwrap_model(self.loss_module).model


def prepare_run(config: TrainConfig, console: Console, resume: bool, *, dataset_dir: Path,
                output_dir: Path) -> PreparedRun:
    """Build the run: data from ``dataset_dir``, outputs to ``output_dir`` (stale ones removed unless resuming)."""
    from accelerate import Accelerator
    from transformers import AutoTokenizer, get_scheduler

    from melancia.models.loading import tokenizer_dir

    placement = choose_placement(config)
    accelerator = Accelerator(cpu=placement.device.type == "cpu")
    placement = Placement(accelerator.device, placement.dtype)
    torch.manual_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir(config.base_model))
    train_split = encode_split(dataset_dir / "train.jsonl", tokenizer, config.max_seq_length)
    valid_path = dataset_dir / "valid.jsonl"
    valid_split = encode_split(valid_path, tokenizer, config.max_seq_length) if _has_rows(valid_path) else None
    if valid_split is not None and config.eval_examples is not None:
        valid_split.examples = valid_split.examples[:config.eval_examples]
    steps = plan_steps(train_split, tokens_per_batch=config.tokens_per_batch,
                       accumulation=config.gradient_accumulation_steps, epochs=config.epochs,
                       max_steps=config.max_steps, seed=config.seed, world_size=accelerator.num_processes)
    if not steps:
        raise DataError(f"{dataset_dir / 'train.jsonl'}: too few examples for one step on "
                        f"{accelerator.num_processes} processes")
    _check_exportable(config)
    model = add_adapters(load_base(config.base_model, placement, quantize_4bit=config.method == "qlora"), config)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay,
                                  fused=placement.device.type == "cuda")
    scheduler = get_scheduler(config.lr_scheduler, optimizer, num_warmup_steps=round(config.warmup_ratio * len(steps)),
                              num_training_steps=len(steps))
    loss_module, optimizer = accelerator.prepare(PackedLMLoss(model), optimizer)
    if accelerator.is_main_process and not resume:
        for stale in ("checkpoints", "best"):
            shutil.rmtree(output_dir / stale, ignore_errors=True)
    accelerator.wait_for_everyone()
    return PreparedRun(config, accelerator, placement, tokenizer, train_split, valid_split, steps, model, loss_module,
                       optimizer, scheduler, output_dir, console)


def _check_exportable(config: TrainConfig) -> None:
    """Refuse before training, not after it, a model whose GGUF export cannot work."""
    from melancia.models.loading import model_dir
    from melancia.export.hyperparameters import read_hyperparameters

    location = Path(model_dir(config.base_model))
    if config.export.gguf and (location / "config.json").exists():
        read_hyperparameters(location)


def _has_rows(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


def plan_fingerprint(config: TrainConfig, split: EncodedSplit, world_size: int) -> str:
    """Identifies the data order: resuming under another one would not replay the same steps."""
    key = json.dumps([config.seed, config.tokens_per_batch, config.gradient_accumulation_steps, config.epochs,
                      config.max_steps, world_size, split.lengths])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def restore_or_start(run: PreparedRun, resume: bool) -> ckpt.TrainerState:
    """A fresh state, or with ``resume`` the newest checkpoint's (model, optimizer and scheduler restored)."""
    fingerprint = plan_fingerprint(run.config, run.train_split, run.accelerator.num_processes)
    latest = ckpt.latest_checkpoint(run.checkpoints) if resume else None
    if latest is None:
        if resume and run.main:
            run.console.print(f"[yellow]no checkpoint in {run.checkpoints}: starting from step 0")
        return ckpt.TrainerState(plan_fingerprint=fingerprint)
    state = ckpt.load_checkpoint(latest, run.unwrapped_model(), run.optimizer, run.scheduler)
    if state.plan_fingerprint != fingerprint:
        raise TrainingSetupError(f"{latest}: written for another dataset or batching (seed, tokens_per_batch, "
                                 "gradient_accumulation_steps, epochs, max_steps or process count changed); "
                                 "resume with the same settings or start a new run_name")
    if run.main:
        run.console.print(f"resuming from {latest} (step {state.step} of {len(run.steps)})")
    return state
