"""From ChatML splits to a deterministic plan of packed micro-batches.

Every optimizer step is known before training starts: the examples of each epoch are shuffled
with ``seed + epoch``, packed first-fit into rows of at most ``tokens_per_batch`` tokens, and the
rows grouped into steps of ``gradient_accumulation_steps x world_size`` micro-batches. The plan is
a pure function of the data and the config, so a resumed run replays exactly the steps an
uninterrupted one would have taken, and every process knows the trainable-token count of the
whole step (the loss normaliser) without communicating.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from melancia.data.io import DataError, load_examples
from melancia.training.attention import cu_seq_lens
from melancia.training.collate import IGNORE, EncodedChat, encode_chat, first_fit, pack, plan_packs


@dataclass
class EncodedSplit:
    """Token ids and labels of one split, with what had to be left out."""

    path: Path
    examples: list[EncodedChat]
    truncated: int
    dropped: int

    @property
    def lengths(self) -> list[int]:
        return [len(e) for e in self.examples]

    @property
    def tokens(self) -> int:
        return sum(self.lengths)


def encode_split(path: Path, tokenizer: Any, max_seq_length: int) -> EncodedSplit:
    """Encode every chat of a JSONL split; examples without an answer token after truncation are dropped."""
    rows = load_examples(path)
    if not rows:
        raise DataError(f"{path}: no examples (build the dataset first: melancia data build)")
    examples, truncated, dropped = [], 0, 0
    for row in rows:
        encoded = encode_chat(tokenizer, row["messages"])
        if len(encoded) > max_seq_length:
            truncated += 1
            encoded = EncodedChat(encoded.input_ids[:max_seq_length], encoded.labels[:max_seq_length])
        if encoded.trainable == 0:
            dropped += 1
            continue
        examples.append(encoded)
    if not examples:
        raise DataError(f"{path}: no example keeps an answer token within max_seq_length={max_seq_length}")
    return EncodedSplit(path, examples, truncated, dropped)


@dataclass
class PackedBatch:
    """One padding-free row: inputs, positions restarting per example, next-token targets."""

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    targets: torch.Tensor
    cu_seq_lens: torch.Tensor
    max_length: int

    @property
    def tokens(self) -> int:
        return int(self.input_ids.numel())

    @property
    def trainable(self) -> int:
        return int((self.targets != IGNORE).sum())

    def to(self, device: torch.device | str) -> PackedBatch:
        return PackedBatch(self.input_ids.to(device), self.position_ids.to(device), self.targets.to(device),
                           self.cu_seq_lens.to(device), self.max_length)


def make_batch(examples: list[EncodedChat]) -> PackedBatch:
    """Pack ``examples`` into one row; each target is the next token's label inside the same example."""
    packed = pack(examples)
    targets = torch.full_like(packed["labels"], IGNORE)
    start = 0
    for length in packed["seq_lens"].tolist():
        targets[0, start:start + length - 1] = packed["labels"][0, start + 1:start + length]
        start += length
    return PackedBatch(packed["input_ids"], packed["position_ids"], targets, cu_seq_lens(packed["seq_lens"]),
                       int(packed["seq_lens"].max()))


def first_fit_packs(lengths: list[int], max_tokens: int, seed: int) -> list[list[int]]:
    """Shuffle with ``seed`` then pack first-fit: rows differ per epoch yet stay nearly full."""
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    return first_fit(order, lengths, max_tokens)


@dataclass
class Step:
    """Micro-batches (lists of example indices) of one optimizer step, for all processes."""

    epoch: int
    micro_batches: list[list[int]]
    trainable: int
    tokens: int

    def for_rank(self, rank: int, world_size: int) -> list[list[int]]:
        return self.micro_batches[rank::world_size]


def plan_steps(split: EncodedSplit, *, tokens_per_batch: int, accumulation: int, epochs: float,
               max_steps: int | None, seed: int, world_size: int = 1) -> list[Step]:
    """Every optimizer step of the run, in order."""

    def epoch_steps(epoch: int) -> list[Step]:
        packs = first_fit_packs(split.lengths, tokens_per_batch, seed + epoch)
        per_step = accumulation * world_size
        groups = [packs[i:i + per_step] for i in range(0, len(packs), per_step)]
        return [_step(split, epoch, g) for g in groups if len(g) >= world_size]  # every process needs one

    steps: list[Step] = []
    for epoch in range(math.ceil(epochs)):
        planned = epoch_steps(epoch)
        if epoch + 1 > epochs:  # fractional last epoch
            planned = planned[:max(1, round(len(planned) * (epochs - epoch)))]
        steps.extend(planned)
    if max_steps is not None:
        while len(steps) < max_steps:  # more passes until max_steps is reached
            steps.extend(epoch_steps(steps[-1].epoch + 1))
        steps = steps[:max_steps]
    return steps


def _step(split: EncodedSplit, epoch: int, micro_batches: list[list[int]]) -> Step:
    examples = [split.examples[i] for mb in micro_batches for i in mb]
    trainable = sum(e.trainable - (e.labels[0] != IGNORE) for e in examples)  # the first label has no predecessor
    return Step(epoch, micro_batches, trainable, sum(len(e) for e in examples))


def eval_batches(split: EncodedSplit, tokens_per_batch: int) -> list[list[int]]:
    """Fixed packing of the eval split (first-fit decreasing)."""
    return plan_packs(split.lengths, tokens_per_batch)
