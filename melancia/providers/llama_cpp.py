"""Provider for GGUF models through llama.cpp (``llama-cpp-python``): fast chat on CPU.

The chat template comes from the GGUF itself (``tokenizer.chat_template``), so a model exported
by ``melancia train`` is prompted exactly as it was trained. The model is loaded once, on first
use, and serves one request at a time (llama.cpp contexts are not thread-safe).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from melancia.providers.base import Completion, Messages, ProviderError


class LlamaCppProvider:
    """Chat with a local ``.gguf`` file."""

    def __init__(self, model_path: Path | str, *, name: str = "llama-cpp", n_ctx: int = 2048,
                 n_threads: int | None = None, model_label: str | None = None) -> None:
        self.name = name
        self.path = Path(model_path)
        self.model = model_label or self.path.stem
        self._n_ctx, self._n_threads = n_ctx, n_threads
        self._llm: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._llm is None:
            if not self.path.is_file():
                raise ProviderError(f"{self.path}: GGUF file not found")
            from llama_cpp import Llama

            try:
                self._llm = Llama(model_path=str(self.path), n_ctx=self._n_ctx, n_threads=self._n_threads,
                                  verbose=False)
            except ValueError as exc:
                raise ProviderError(f"{self.path}: llama.cpp cannot load it ({exc})") from None
        return self._llm

    def chat(self, messages: Messages, *, max_tokens: int = 256, temperature: float = 0.0,
             seed: int | None = None) -> Completion:
        with self._lock:
            llm = self._load()
            reply = llm.create_chat_completion(messages, max_tokens=max_tokens, temperature=temperature,
                                               seed=seed)
        usage = reply.get("usage", {})
        choice = reply["choices"][0]
        return Completion(text=choice["message"]["content"] or "", model=self.model,
                          input_tokens=usage.get("prompt_tokens", 0), output_tokens=usage.get("completion_tokens", 0),
                          finish_reason=choice.get("finish_reason") or "stop")

    def stream(self, messages: Messages, *, max_tokens: int = 256, temperature: float = 0.0,
               seed: int | None = None) -> Iterator[str]:
        with self._lock:
            llm = self._load()
            for chunk in llm.create_chat_completion(messages, max_tokens=max_tokens, temperature=temperature,
                                                    seed=seed, stream=True):
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    yield piece

    def count_tokens(self, text: str) -> int:
        with self._lock:
            return len(self._load().tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def health(self) -> bool:
        try:
            return self.count_tokens("ok") > 0
        except ProviderError:
            return False
