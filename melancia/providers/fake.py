"""A scripted provider for tests and dry runs: fixed answers, injected failures and delays.

It behaves like a real provider (same interface, token counts, streaming in pieces) so the router,
the predictor and the API can be exercised without loading a model. ``fail_next`` and ``delay_s``
let tests script outages and timeouts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from melancia.providers.base import Completion, Messages, ProviderError


class FakeProvider:
    """Answers ``reply``: a template (``{question}`` is the last user message) or a function of the messages.

    ``fail_with`` makes every call raise that exception (e.g. a ProviderError naming an unreachable URL).
    """

    def __init__(self, name: str = "fake", model: str = "fake-model", *,
                 reply: str | Callable[[Messages], str] = "Resposta: {question}", delay_s: float = 0.0,
                 fail_with: Exception | None = None) -> None:
        self.name, self.model = name, model
        self.reply, self.delay_s, self.fail_with = reply, delay_s, fail_with
        self.calls: list[Messages] = []
        self._failures = 0
        self._fail_always = False
        self._lock = threading.Lock()

    def fail_next(self, times: int = 1) -> None:
        """The next ``times`` calls raise :class:`ProviderError`."""
        self._failures += times

    def fail_always(self, failing: bool = True) -> None:
        self._fail_always = failing

    def _answer(self, messages: Messages) -> str:
        with self._lock:
            self.calls.append(messages)
            failing = self._fail_always or self._failures > 0
            if self._failures > 0:
                self._failures -= 1
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail_with is not None:
            raise self.fail_with
        if failing:
            raise ProviderError(f"{self.name}: scripted failure")
        if callable(self.reply):
            return self.reply(messages)
        question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        return self.reply.replace("{question}", question)

    def chat(self, messages: Messages, *, max_tokens: int = 256, temperature: float = 0.0,
             seed: int | None = None) -> Completion:
        words = self._answer(messages).split(" ")[:max_tokens]
        text = " ".join(words)
        return Completion(text=text, model=self.model, input_tokens=sum(self.count_tokens(m["content"]) for m in messages),
                          output_tokens=len(words), finish_reason="length" if len(words) == max_tokens else "stop")

    def stream(self, messages: Messages, *, max_tokens: int = 256, temperature: float = 0.0,
               seed: int | None = None) -> Iterator[str]:
        words = self._answer(messages).split(" ")[:max_tokens]
        for i, word in enumerate(words):
            yield word if i == 0 else " " + word

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def health(self) -> bool:
        return self.fail_with is None and not self._fail_always
