"""The one interface every model provider implements.

A provider turns ChatML messages into an answer. Local transformers, llama.cpp and any
OpenAI-compatible HTTP server all look the same to the router, the evaluation and the dataset
synthesiser.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from melancia.errors import MelanciaError

Messages = list[dict[str, str]]


class ProviderError(MelanciaError, RuntimeError):
    """A provider could not answer (unreachable, timed out, refused); safe to show to users."""


@dataclass
class Completion:
    """One answer and what it cost."""

    text: str
    model: str
    input_tokens: int
    output_tokens: int
    finish_reason: str = "stop"


@runtime_checkable
class Provider(Protocol):
    name: str
    model: str

    def chat(self, messages: Messages, *, max_tokens: int = 256, temperature: float = 0.0,
             seed: int | None = None) -> Completion:
        """The whole answer at once."""
        ...

    def stream(self, messages: Messages, *, max_tokens: int = 256, temperature: float = 0.0,
               seed: int | None = None) -> Iterator[str]:
        """The answer in pieces, as they are generated."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` for this provider's model (an estimate where the tokenizer is remote)."""
        ...

    def health(self) -> bool:
        """Whether the provider can answer right now (a cheap, real check)."""
        ...
