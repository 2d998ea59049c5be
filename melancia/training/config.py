"""The training stage's config: model, adapter shape, batching, schedule, exports and tracking."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path

from melancia.config import check
from melancia.models.loading import PACKAGED_MODEL
from melancia.models.persona import DEFAULT_SYSTEM_PROMPT
from melancia.tracking import TrackingConfig


@dataclass
class LoraConfig:
    """Low-rank adapter shape (PEFT ``LoraConfig``)."""

    r: int = 16
    """Rank of the update matrices."""
    alpha: int = 32
    """Scaling numerator: the update is multiplied by alpha / r."""
    dropout: float = 0.05
    """Dropout on the adapter input."""
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    """Module names to adapt, or ["all-linear"] for every linear layer but the output head."""
    use_dora: bool = False
    """Weight-decomposed low-rank adaptation (DoRA) instead of plain LoRA."""

    def __post_init__(self) -> None:
        check(1 <= self.r <= 1024, "r", "an integer in 1..1024", self.r)
        check(self.alpha >= 1, "alpha", "an integer >= 1", self.alpha)
        check(0.0 <= self.dropout < 1.0, "dropout", "a number in [0, 1)", self.dropout)
        check(bool(self.target_modules), "target_modules", "at least one module name", self.target_modules)


@dataclass
class ExportConfig:
    """What a finished run leaves next to its adapter."""

    merged: bool = True
    """Merge the adapter into an unquantised copy of the base and save it as safetensors."""
    gguf: bool = True
    """Convert the merged model to GGUF for llama.cpp, with an Ollama Modelfile (needs ``merged``)."""
    gguf_type: typing.Literal["f32", "f16", "q8_0"] = "f16"
    """Precision of the GGUF weights (q8_0 is half the size; small models lose quality to it)."""

    def __post_init__(self) -> None:
        check(self.merged or not self.gguf, "gguf", "false when merged is false (GGUF is made from the merged model)",
               self.gguf)


@dataclass
class TrainConfig:
    """How ``melancia train`` fine-tunes a chat model on the ChatML splits."""

    base_model: str = PACKAGED_MODEL
    """Model to fine-tune: packaged:NAME, a .gguf file, a local Hugging Face folder or a hub id."""
    method: typing.Literal["lora", "qlora"] = "lora"
    """lora: adapters on float weights; qlora: adapters on a 4-bit NF4 base (CUDA + bitsandbytes)."""
    lora: LoraConfig = field(default_factory=LoraConfig)
    """Adapter shape."""
    dataset_dir: Path | None = None
    """Folder holding train.jsonl and valid.jsonl; None means MELANCIA_HOME/datasets."""
    output_dir: Path | None = None
    """Where checkpoints and exports go; None means MELANCIA_HOME/runs/<run_name>."""
    run_name: str = "smollm2-lora"
    """Name of the run (folder, MLflow run name)."""
    max_seq_length: int = 1024
    """Examples longer than this are truncated (and dropped when no answer token is left)."""
    tokens_per_batch: int = 4096
    """Token budget of one packed micro-batch (padding-free: examples are concatenated up to it)."""
    gradient_accumulation_steps: int = 1
    """Micro-batches per optimizer step; the loss is normalised by the trainable tokens of the whole step."""
    epochs: float = 1.0
    """Passes over the training split (fractions allowed)."""
    max_steps: int | None = None
    """Stop after this many optimizer steps (overrides epochs when set)."""
    learning_rate: float = 2e-4
    """Peak learning rate of AdamW."""
    lr_scheduler: typing.Literal["cosine", "linear", "constant"] = "cosine"
    """Decay after warmup."""
    warmup_ratio: float = 0.05
    """Share of the steps spent warming up linearly from zero."""
    weight_decay: float = 0.0
    """AdamW weight decay on the adapter weights."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm (0 disables)."""
    eval_every: int = 20
    """Compute the eval loss on valid.jsonl every this many steps (and at the end)."""
    eval_examples: int | None = None
    """Evaluate on the first N examples of valid.jsonl only (None: all of them)."""
    early_stopping_patience: int = 0
    """Stop after this many evaluations without improvement (0 disables)."""
    save_every: int = 20
    """Write a resumable checkpoint every this many steps."""
    keep_checkpoints: int = 2
    """How many step checkpoints to keep (the best adapter is always kept)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, about 30% slower."""
    device: typing.Literal["auto", "cpu", "cuda"] = "auto"
    """auto: CUDA when available, else CPU."""
    seed: int = 42
    """Seed of adapter init, data order and dropout (CPU runs are deterministic)."""
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    """System prompt written into the Modelfile and model card (the data already carries it)."""
    export: ExportConfig = field(default_factory=ExportConfig)
    """Exports made at the end."""
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    """MLflow tracking and registry."""

    def __post_init__(self) -> None:
        check(16 <= self.max_seq_length <= 131072, "max_seq_length", "an integer in 16..131072", self.max_seq_length)
        check(self.tokens_per_batch >= self.max_seq_length, "tokens_per_batch",
               f"an integer >= max_seq_length ({self.max_seq_length})", self.tokens_per_batch)
        check(self.gradient_accumulation_steps >= 1, "gradient_accumulation_steps", "an integer >= 1",
               self.gradient_accumulation_steps)
        check(self.epochs > 0, "epochs", "a number > 0", self.epochs)
        check(self.max_steps is None or self.max_steps >= 1, "max_steps", "null or an integer >= 1", self.max_steps)
        check(0 < self.learning_rate < 1, "learning_rate", "a number in (0, 1)", self.learning_rate)
        check(0 <= self.warmup_ratio < 1, "warmup_ratio", "a number in [0, 1)", self.warmup_ratio)
        check(self.max_grad_norm >= 0, "max_grad_norm", "a number >= 0", self.max_grad_norm)
        for name in ("eval_every", "save_every", "keep_checkpoints"):
            check(getattr(self, name) >= 1, name, "an integer >= 1", getattr(self, name))
        check(self.eval_examples is None or self.eval_examples >= 1, "eval_examples", "null or an integer >= 1",
               self.eval_examples)
        check(self.early_stopping_patience >= 0, "early_stopping_patience", "an integer >= 0",
               self.early_stopping_patience)
        check(bool(self.run_name.strip()) and "/" not in self.run_name, "run_name", "a name without '/'",
               self.run_name)
