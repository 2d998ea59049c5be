"""The model card (Markdown) written next to every fine-tuned adapter."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from melancia.data.io import atomic_write_text
from melancia.training.config import TrainConfig


@dataclass
class CardFacts:
    """What the card reports besides the config."""

    train_examples: int
    train_tokens: int
    valid_examples: int
    steps: int
    trained_tokens: int
    seconds: float
    trainable_parameters: int
    total_parameters: int
    precision: str
    device: str
    first_eval_loss: float | None
    best_eval_loss: float | None
    best_step: int | None
    final_train_loss: float | None
    stopped_early: bool
    dataset_manifest: dict[str, Any] | None = None


def render_card(config: TrainConfig, facts: CardFacts) -> str:
    lora = config.lora
    kind = "DoRA" if lora.use_dora else "LoRA"
    if config.method == "qlora":
        kind = f"Q{kind} (4-bit NF4 base, double quantisation)"
    lines = [
        "---",
        f"base_model: {config.base_model}",
        "library_name: peft",
        "language: [pt]",
        "tags: [melancia, retail-media, lora, sft]",
        "---",
        f"# {config.run_name}",
        "",
        "MelancIA assistant: answers questions about Retail Media Ads in Brazil (Mercado Livre, Amazon,",
        "Magalu, Shopee) in Portuguese: metrics such as ACOS, ROAS and TACOS, campaign optimisation,",
        "measurement and platform specifics.",
        "",
        "## Intended use",
        "",
        "Assistant for analysts running sponsored-product campaigns, behind the MelancIA router, which adds",
        "retrieval with citations and an exact metric calculator. Numbers it computes on its own are not",
        "guaranteed: the router sends calculations to the calculator. Not for legal, tax or financial advice.",
        "",
        "## Training",
        "",
        "| | |",
        "|---|---|",
        f"| base model | `{config.base_model}` |",
        (f"| method | {kind}, r={lora.r}, alpha={lora.alpha}, dropout={lora.dropout}, "
         f"targets={', '.join(lora.target_modules)} |"),
        (f"| trainable parameters | {facts.trainable_parameters:,} of {facts.total_parameters:,} "
         f"({100 * facts.trainable_parameters / max(facts.total_parameters, 1):.2f}%) |"),
        (f"| data | {facts.train_examples} training examples ({facts.train_tokens:,} tokens), "
         f"{facts.valid_examples} validation examples |"),
        (f"| schedule | {facts.steps} steps, lr {config.learning_rate:g} ({config.lr_scheduler}, warmup "
         f"{config.warmup_ratio:g}), {config.tokens_per_batch} tokens per packed batch x "
         f"{config.gradient_accumulation_steps} accumulation |"),
        "| loss | assistant tokens only (end-of-turn included), normalised per trainable token |",
        (f"| hardware | {facts.device}, {facts.precision}, {facts.seconds / 60:.1f} min, "
         f"{facts.trained_tokens / max(facts.seconds, 1e-9):.0f} tokens/s |"),
        f"| seed | {config.seed} |",
        "",
        "## Metrics",
        "",
        f"- eval loss before training: {_fmt(facts.first_eval_loss)}",
        f"- best eval loss: {_fmt(facts.best_eval_loss)} (step {facts.best_step})",
        f"- last training loss: {_fmt(facts.final_train_loss)}",
        f"- stopped early: {'yes' if facts.stopped_early else 'no'}",
        "",
        "The evaluation gate (`melancia eval`) compares this model with its base on the held-out split.",
    ]
    if facts.dataset_manifest:
        lines += ["", "## Dataset manifest", "", "```json", json.dumps(facts.dataset_manifest, indent=2,
                                                                           ensure_ascii=False), "```"]
    return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def write_card(path: Path, config: TrainConfig, facts: CardFacts) -> Path:
    atomic_write_text(path, render_card(config, facts))
    return path
