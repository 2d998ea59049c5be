"""Provider for a local Hugging Face model (optionally with a LoRA adapter) through transformers.

The weights are loaded once per (base, adapter, device) and shared by every provider that names
them, so a router with several rules over the same model holds one copy. On CUDA the model runs in
bfloat16, on CPU in float32; the adapter is merged at load time, so serving costs what the base
costs. Generation is serialised per model (one ``generate`` at a time).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from melancia.models.loading import ModelNotFoundError, model_dir
from melancia.providers.base import Completion, Messages, ProviderError


@dataclass
class _LoadedModel:
    model: Any
    tokenizer: Any
    lock: threading.Lock


_SHARED: dict[tuple[str, str, str], _LoadedModel] = {}
_SHARED_LOCK = threading.Lock()


def pick_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ProviderError("device 'cuda' was asked for but no CUDA device is visible")
    return device


def shared_model(base: str, adapter: Path | None, device: str) -> _LoadedModel:
    """The loaded model for this key, loading it on first use (thread-safe)."""
    key = (base, str(adapter or ""), device)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = _load(base, adapter, device)
        return _SHARED[key]


def _load(base: str, adapter: Path | None, device: str) -> _LoadedModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        location = model_dir(base)
        tokenizer = AutoTokenizer.from_pretrained(str(adapter) if adapter else location)
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype)
        if adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    except (ModelNotFoundError, OSError, ValueError) as exc:
        raise ProviderError(f"cannot load {base}{' + ' + str(adapter) if adapter else ''}: {exc}") from None
    return _LoadedModel(model.to(device).eval(), tokenizer, threading.Lock())


class TransformersProvider:
    """Chat with ``base`` (+ ``adapter``) on CPU or CUDA."""

    def __init__(self, base: str, adapter: Path | None = None, *, name: str = "transformers",
                 device: str = "auto", model_label: str | None = None) -> None:
        self.name = name
        self.base, self.adapter = base, adapter
        self.model = model_label or (f"{base}+{Path(adapter).name}" if adapter else base)
        self._device = device

    def _loaded(self) -> _LoadedModel:
        return shared_model(self.base, self.adapter, pick_device(self._device))

    def _inputs(self, loaded: _LoadedModel, messages: Messages) -> Any:
        prompt = loaded.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = loaded.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        return inputs.to(loaded.model.device)

    @staticmethod
    def _sampling(loaded: _LoadedModel, max_tokens: int, temperature: float, seed: int | None) -> dict[str, Any]:
        import torch

        if seed is not None:
            torch.manual_seed(seed)
        sampling: dict[str, Any] = {"do_sample": True, "temperature": temperature} if temperature > 0 else \
            {"do_sample": False}
        pad = loaded.tokenizer.pad_token_id
        return {"max_new_tokens": max_tokens, "pad_token_id": pad if pad is not None else loaded.tokenizer.eos_token_id,
                **sampling}

    def chat(self, messages: Messages, *, max_tokens: int = 256, temperature: float = 0.0,
             seed: int | None = None) -> Completion:
        import torch

        loaded = self._loaded()
        inputs = self._inputs(loaded, messages)
        with loaded.lock, torch.no_grad():
            output = loaded.model.generate(**inputs, **self._sampling(loaded, max_tokens, temperature, seed))
        new = output[0, inputs["input_ids"].shape[1]:]
        finished = bool(len(new)) and int(new[-1]) == loaded.tokenizer.eos_token_id
        return Completion(text=loaded.tokenizer.decode(new, skip_special_tokens=True), model=self.model,
                          input_tokens=int(inputs["input_ids"].shape[1]), output_tokens=int(new.shape[0]),
                          finish_reason="stop" if finished or len(new) < max_tokens else "length")

    def stream(self, messages: Messages, *, max_tokens: int = 256, temperature: float = 0.0,
               seed: int | None = None) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        loaded = self._loaded()
        inputs = self._inputs(loaded, messages)
        streamer = TextIteratorStreamer(loaded.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=300)
        kwargs = {**inputs, **self._sampling(loaded, max_tokens, temperature, seed), "streamer": streamer}
        errors: list[BaseException] = []

        def generate() -> None:
            import torch

            try:
                with loaded.lock, torch.no_grad():
                    loaded.model.generate(**kwargs)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer below
                errors.append(exc)
                streamer.end()

        worker = threading.Thread(target=generate, daemon=True)
        worker.start()
        for piece in streamer:
            if piece:
                yield piece
        worker.join()
        if errors:
            raise ProviderError(f"{self.name}: generation failed ({type(errors[0]).__name__})")

    def count_tokens(self, text: str) -> int:
        return len(self._loaded().tokenizer(text, add_special_tokens=False)["input_ids"])

    def health(self) -> bool:
        try:
            self._loaded()
            return True
        except ProviderError:
            return False
