"""Any OpenAI-compatible chat server through the official ``openai`` SDK.

OpenAI itself, Ollama's ``/v1``, vLLM (a LoRA adapter name works as the model), TGI and the
llama.cpp server all speak this protocol. The API key is read from an environment variable whose
name is configured, never from a config file, and is never logged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from melancia.providers.base import Completion, Messages, ProviderError


class OpenAICompatibleProvider:
    def __init__(self, *, base_url: str, model: str, name: str = "openai", api_key_env: str | None = "OPENAI_API_KEY",
                 timeout_s: float = 60.0, max_retries: int = 2) -> None:
        import openai

        self.name, self.model, self.base_url = name, model, base_url
        api_key = os.environ.get(api_key_env, "") if api_key_env else ""
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed",
                                     timeout=timeout_s, max_retries=max_retries)

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAICompatibleProvider(name={self.name!r}, model={self.model!r}, base_url={self.base_url!r})"

    def _request(self, messages: Messages, max_tokens: int, temperature: float, seed: int | None, **extra: Any) -> Any:
        import openai

        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": max_tokens,
                                  "temperature": temperature, **extra}
        if seed is not None:
            kwargs["seed"] = seed
        try:
            return self._client.chat.completions.create(**kwargs)
        except openai.APITimeoutError:
            raise ProviderError(f"{self.name}: timed out") from None
        except openai.APIConnectionError:
            raise ProviderError(f"{self.name}: cannot connect to {self.base_url}") from None
        except openai.APIStatusError as exc:
            raise ProviderError(f"{self.name}: server answered HTTP {exc.status_code}") from None

    def chat(self, messages: Messages, *, max_tokens: int = 256, temperature: float = 0.0,
             seed: int | None = None) -> Completion:
        response = self._request(messages, max_tokens, temperature, seed)
        choice = response.choices[0]
        usage = response.usage
        text = choice.message.content or ""
        return Completion(text=text, model=response.model or self.model,
                          input_tokens=usage.prompt_tokens if usage else self.count_tokens(_joined(messages)),
                          output_tokens=usage.completion_tokens if usage else self.count_tokens(text),
                          finish_reason=choice.finish_reason or "stop")

    def stream(self, messages: Messages, *, max_tokens: int = 256, temperature: float = 0.0,
               seed: int | None = None) -> Iterator[str]:
        import openai

        chunks = self._request(messages, max_tokens, temperature, seed, stream=True)
        try:
            for chunk in chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        except (openai.APIError, OSError) as exc:
            raise ProviderError(f"{self.name}: stream interrupted ({type(exc).__name__})") from None

    def count_tokens(self, text: str) -> int:
        """Estimate (about 4 characters a token); the server's usage numbers are used when given."""
        return max(1, len(text) // 4)

    def health(self) -> bool:
        try:
            self._client.models.list()
            return True
        except Exception:  # noqa: BLE001 - any failure means "not healthy"
            return False


def _joined(messages: Messages) -> str:
    return "\n".join(m["content"] for m in messages)
