"""Token lengths measured with the target model's own tokenizer and chat template."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TokenCounter = Callable[[list[dict[str, str]]], int]


def chat_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """Token ids of ``messages`` rendered by the tokenizer's chat template."""
    encoded = tokenizer.apply_chat_template(messages, tokenize=True)
    if isinstance(encoded, dict) or hasattr(encoded, "keys"):
        encoded = encoded["input_ids"]
    return list(encoded)


def chat_counter(tokenizer: Any) -> TokenCounter:
    """A function giving the templated length of a conversation."""
    return lambda messages: len(chat_ids(tokenizer, messages))


def text_counter(tokenizer: Any) -> Callable[[str], int]:
    """A function giving the length of plain text (no special tokens)."""
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])
