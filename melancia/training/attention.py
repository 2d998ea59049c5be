"""Variable-length causal attention for padding-free packed batches.

A packed row holds several examples back to back. Instead of materialising a block-diagonal
``T x T`` mask (memory and compute quadratic in the whole row), attention runs causally inside
each example, given the example boundaries ``cu_seq_lens`` (the FlashAttention varlen
convention). The function is registered with transformers' ``AttentionInterface`` under
:data:`VARLEN`, so any model that uses the attention interface (Llama, Qwen2, Phi-3, ...) runs
packed batches exactly, with cost proportional to the sum of squared example lengths.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

VARLEN = "melancia_varlen"


def varlen_sdpa_forward(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                        attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                        **kwargs: Any) -> tuple[torch.Tensor, None]:
    """Causal SDPA inside each packed example; plain SDPA when no boundaries are given.

    ``query`` is ``[1, heads, T, dim]``; ``kwargs["cu_seq_lens_q"]`` holds cumulative example
    lengths ``[0, l1, l1+l2, ..., T]``.
    """
    cu_seq_lens = kwargs.get("cu_seq_lens_q")
    if cu_seq_lens is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    if query.shape[0] != 1:
        raise ValueError("packed batches have a single row; got a batch of shape " + str(tuple(query.shape)))
    groups = getattr(module, "num_key_value_groups", 1)
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    lengths = torch.diff(cu_seq_lens).tolist()
    dropout_p = dropout if module.training else 0.0
    pieces = [
        torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout_p, scale=scaling)
        for q, k, v in zip(query.split(lengths, dim=2), key.split(lengths, dim=2), value.split(lengths, dim=2))
    ]
    return torch.cat(pieces, dim=2).transpose(1, 2).contiguous(), None


def cu_seq_lens(seq_lens: torch.Tensor) -> torch.Tensor:
    """Cumulative boundaries ``[0, l1, l1+l2, ...]`` as int32 (the varlen kernels' convention)."""
    return torch.nn.functional.pad(torch.cumsum(seq_lens, 0, dtype=torch.int32), (1, 0))


AttentionInterface.register(VARLEN, varlen_sdpa_forward)
