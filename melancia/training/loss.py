"""Token-level cross-entropy of a packed batch, computed only where there is something to learn.

:class:`PackedLMLoss` wraps a causal LM (plain or PEFT) as one module whose forward returns the
*sum* of the cross-entropy over trainable targets, so the trainer can normalise by the trainable
tokens of a whole optimizer step (not per micro-batch). Hidden states of prompt tokens never reach
the output projection: only positions with a target are projected, in chunks, so the full
``tokens x vocabulary`` logits tensor is never built. Being a single module, it can be wrapped by
DDP/FSDP through ``accelerate``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

from melancia.training.batches import PackedBatch
from melancia.training.collate import IGNORE

CHUNK_TOKENS = 2048


class PackedLMLoss(torch.nn.Module):
    """``forward(batch) -> (loss_sum, trainable_tokens)`` for a causal LM on packed rows."""

    def __init__(self, model: Any, chunk_tokens: int = CHUNK_TOKENS) -> None:
        super().__init__()
        self.model = model
        self.chunk_tokens = chunk_tokens

    @property
    def causal_lm(self) -> Any:
        get_base = getattr(self.model, "get_base_model", None)
        return get_base() if get_base else self.model

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, targets: torch.Tensor,
                cu_seq_lens: torch.Tensor, max_length: int) -> torch.Tensor:
        lm = self.causal_lm
        hidden = lm.get_decoder()(input_ids=input_ids, position_ids=position_ids, use_cache=False,
                                  cu_seq_lens_q=cu_seq_lens, cu_seq_lens_k=cu_seq_lens,
                                  max_length_q=max_length, max_length_k=max_length).last_hidden_state
        keep = targets != IGNORE
        return chunked_cross_entropy(hidden[keep], targets[keep], lm.get_output_embeddings(), lm.config,
                                     self.chunk_tokens)

    def batch_loss(self, batch: PackedBatch) -> torch.Tensor:
        return self(batch.input_ids, batch.position_ids, batch.targets, batch.cu_seq_lens, batch.max_length)


def chunked_cross_entropy(hidden: torch.Tensor, targets: torch.Tensor, head: torch.nn.Module, config: Any,
                          chunk_tokens: int) -> torch.Tensor:
    """Sum of cross-entropy of ``head(hidden)`` against ``targets``; logits exist one chunk at a time.

    Chunks are recomputed in the backward pass (activation checkpointing), so peak memory holds
    one chunk of logits instead of all of them.
    """
    if hidden.shape[0] <= chunk_tokens:
        return _chunk_loss(hidden, targets, head, config)
    total = hidden.new_zeros((), dtype=torch.float32)
    for h, t in zip(hidden.split(chunk_tokens), targets.split(chunk_tokens)):
        total = total + checkpoint(_chunk_loss, h, t, head, config, use_reentrant=False)
    return total


def _chunk_loss(hidden: torch.Tensor, targets: torch.Tensor, head: torch.nn.Module, config: Any) -> torch.Tensor:
    logits = head(hidden).float()
    softcap = getattr(config, "final_logit_softcapping", None)
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
