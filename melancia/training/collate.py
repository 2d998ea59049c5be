"""Turn chats into training tensors: assistant-only labels, padding-free packing, position masks.

Pitfalls this module exists to avoid (each has a test):

* labels all masked: a batch without a single trainable token raises :class:`NoTrainableLabelsError`;
* the end-of-turn token masked: labels cover every assistant turn *including* its end-of-turn
  token (found by rendering the chat template, never by searching for token ids);
* pad equal to EOS: padding is masked by position (``attention_mask``), never by comparing ids
  with ``pad_token_id``, so a model whose pad token is its EOS still learns to stop;
* packed examples attending to each other: packed batches carry ``position_ids`` that restart at
  every example and a block-diagonal causal mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from melancia.data.tokens import chat_ids

IGNORE = -100


class NoTrainableLabelsError(ValueError):
    """Every label of a batch is masked: training on it would learn nothing."""


class ChatTemplateError(ValueError):
    """The chat template renders a conversation prefix differently from the whole conversation."""


@dataclass
class EncodedChat:
    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def trainable(self) -> int:
        return sum(label != IGNORE for label in self.labels)


def encode_chat(tokenizer: Any, messages: list[dict[str, str]], max_length: int | None = None) -> EncodedChat:
    """Token ids of the whole chat and labels that are -100 everywhere but the assistant turns.

    Each assistant span is located by rendering the template up to the turn (with the generation
    prompt) and up to the end of the turn; the tokens between the two are the answer plus the
    template's end-of-turn marker, which stay in the loss.
    """
    ids = chat_ids(tokenizer, messages)
    labels = [IGNORE] * len(ids)
    for turn, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = _prompt_length(tokenizer, messages[:turn])
        through_turn = chat_ids(tokenizer, messages[:turn + 1])
        end = len(through_turn)
        if ids[:end] != through_turn or end <= start:
            raise ChatTemplateError(f"the chat template does not render turn {turn} as a prefix of the whole chat; "
                                    "assistant tokens cannot be located")
        labels[start:end] = ids[start:end]
    if max_length is not None and len(ids) > max_length:
        ids, labels = ids[:max_length], labels[:max_length]
    return EncodedChat(ids, labels)


def _prompt_length(tokenizer: Any, messages: list[dict[str, str]]) -> int:
    encoded = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    if hasattr(encoded, "keys"):
        encoded = encoded["input_ids"]
    return len(encoded)


def require_trainable(labels: torch.Tensor, where: str = "batch") -> int:
    """Number of trainable labels; raises when there is none."""
    count = int((labels != IGNORE).sum())
    if count == 0:
        raise NoTrainableLabelsError(f"{where} has no trainable label (every token is masked): check that the "
                                     "examples end with an assistant turn and are not truncated before it")
    return count


def pad_batch(examples: list[EncodedChat], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch; padded positions are masked by position, whatever the pad id is."""
    width = max(len(e) for e in examples)
    input_ids = torch.full((len(examples), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example)
        input_ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        attention_mask[row, :n] = 1
    require_trainable(labels)
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


def plan_packs(lengths: list[int], max_tokens: int) -> list[list[int]]:
    """Indices grouped into packs of at most ``max_tokens`` tokens (first-fit decreasing, stable).

    An example longer than ``max_tokens`` gets a pack of its own (callers truncate before).
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [sorted(p) for p in first_fit(order, lengths, max_tokens)]


def first_fit(order: list[int], lengths: list[int], max_tokens: int) -> list[list[int]]:
    """Put each index, in ``order``, into the first pack with room for it (a new pack if none)."""
    packs: list[list[int]] = []
    room: list[int] = []
    for index in order:
        for p, free in enumerate(room):
            if lengths[index] <= free:
                packs[p].append(index)
                room[p] -= lengths[index]
                break
        else:
            packs.append([index])
            room.append(max_tokens - lengths[index])
    return packs


def pack(examples: list[EncodedChat]) -> dict[str, torch.Tensor]:
    """One padding-free row: examples concatenated, positions restarting at each example.

    ``seq_lens`` gives the example boundaries (for variable-length attention kernels or
    :func:`block_causal_mask`).
    """
    input_ids = torch.tensor([t for e in examples for t in e.input_ids], dtype=torch.long)[None]
    labels = torch.tensor([t for e in examples for t in e.labels], dtype=torch.long)[None]
    position_ids = torch.cat([torch.arange(len(e)) for e in examples])[None]
    require_trainable(labels)
    return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids,
            "seq_lens": torch.tensor([len(e) for e in examples], dtype=torch.long)}


def block_causal_mask(seq_lens: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Additive mask [1, 1, T, T]: causal inside each example, nothing across examples."""
    doc = torch.repeat_interleave(torch.arange(len(seq_lens)), seq_lens)
    total = int(seq_lens.sum())
    causal = torch.ones(total, total, dtype=torch.bool).tril()
    allowed = causal & (doc[:, None] == doc[None, :])
    mask = torch.zeros(total, total, dtype=dtype)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[None, None]
