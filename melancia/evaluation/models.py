"""The models an evaluation compares, behind one small interface.

A model reference for ``melancia eval`` is one of:

* a ``.gguf`` file: run through llama.cpp;
* a training run folder (``MELANCIA_HOME/runs/<name>``): its GGUF when it has one, else its adapter;
* ``BASE+ADAPTER_DIR`` (e.g. ``packaged:smollm2+.melancia/runs/x/adapter``): transformers with PEFT;
* ``packaged:NAME``: the unquantised base exported to GGUF at the evaluation's precision, so base
  and fine-tuned run on the same engine at the same precision;
* a Hugging Face folder or hub id: transformers.

Each model generates an answer for a conversation and scores a reference answer (the log
probabilities of its tokens, end-of-turn included, for perplexity).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from melancia.export.merge import base_model_gguf
from melancia.models.loading import model_dir, resolve, tokenizer_dir
from melancia.providers.base import Messages
from melancia.tracking import read_run_record


@dataclass
class Generation:
    text: str
    output_tokens: int
    seconds: float


class EvaluatedModel(Protocol):
    ref: str
    kind: str

    def generate(self, messages: Messages, *, max_tokens: int, temperature: float, seed: int) -> Generation: ...

    def reference_logprobs(self, messages: Messages, reference: str) -> list[float]: ...

    def close(self) -> None:
        """Free the weights now (llama.cpp contexts freed later by the garbage collector can crash)."""


def _render(tokenizer: Any, messages: Messages, reference: str | None = None) -> tuple[str, str]:
    """Prompt text (with the generation prompt) and the prompt + reference + end of turn."""
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if reference is None:
        return prompt, prompt
    full = tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": reference}], tokenize=False)
    return prompt, full


class GGUFModel:
    """A GGUF file through llama.cpp; the Hugging Face tokenizer renders the same chat template."""

    kind = "gguf"

    def __init__(self, path: Path, tokenizer_source: str, *, n_ctx: int = 2048) -> None:
        from llama_cpp import Llama
        from transformers import AutoTokenizer

        self.ref = str(path)
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
        self.llm = Llama(model_path=str(path), n_ctx=n_ctx, logits_all=True, verbose=False)

    def generate(self, messages: Messages, *, max_tokens: int, temperature: float, seed: int) -> Generation:
        started = time.perf_counter()
        reply = self.llm.create_chat_completion(messages, max_tokens=max_tokens, temperature=temperature, seed=seed)
        seconds = time.perf_counter() - started
        return Generation(reply["choices"][0]["message"]["content"] or "", reply["usage"]["completion_tokens"],
                          seconds)

    def reference_logprobs(self, messages: Messages, reference: str) -> list[float]:
        prompt, full = _render(self.tokenizer, messages, reference)
        prompt_ids = self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        ids = self.llm.tokenize(full.rstrip("\n").encode("utf-8"), add_bos=False, special=True)
        ids = ids[:self.llm.n_ctx()]
        self.llm.reset()
        self.llm.eval(ids)
        logits = torch.from_numpy(self.llm.scores[:len(ids)].copy())
        logprobs = torch.log_softmax(logits[:-1].float(), dim=-1)
        targets = torch.tensor(ids[1:])
        picked = logprobs.gather(1, targets[:, None])[:, 0]
        return picked[len(prompt_ids) - 1:].tolist()

    def close(self) -> None:
        self.llm.close()


class TransformersModel:
    """A Hugging Face model (optionally with a PEFT adapter) through transformers, float32 on CPU."""

    kind = "transformers"

    def __init__(self, base: str, adapter: Path | None = None) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.ref = f"{base}+{adapter}" if adapter else base
        location = model_dir(base)
        self.tokenizer = AutoTokenizer.from_pretrained(adapter or location)
        model = AutoModelForCausalLM.from_pretrained(location, dtype=torch.float32)
        if adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
        self.model = model.eval()

    @torch.no_grad()
    def generate(self, messages: Messages, *, max_tokens: int, temperature: float, seed: int) -> Generation:
        prompt, _ = _render(self.tokenizer, messages)
        inputs = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        torch.manual_seed(seed)
        started = time.perf_counter()
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        output = self.model.generate(**inputs, max_new_tokens=max_tokens, pad_token_id=self.tokenizer.pad_token_id,
                                     **sampling)
        seconds = time.perf_counter() - started
        new = output[0, inputs["input_ids"].shape[1]:]
        return Generation(self.tokenizer.decode(new, skip_special_tokens=True), int(new.shape[0]), seconds)

    @torch.no_grad()
    def reference_logprobs(self, messages: Messages, reference: str) -> list[float]:
        prompt, full = _render(self.tokenizer, messages, reference)
        prompt_ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        ids = self.tokenizer(full.rstrip("\n"), add_special_tokens=False, return_tensors="pt")["input_ids"]
        logprobs = torch.log_softmax(self.model(ids).logits[0, :-1].float(), dim=-1)
        picked = logprobs.gather(1, ids[0, 1:, None])[:, 0]
        return picked[len(prompt_ids) - 1:].tolist()

    def close(self) -> None:
        del self.model


def open_model(ref: str, *, gguf_type: str = "f16") -> EvaluatedModel:
    """The evaluated model named by ``ref`` (see the module docstring for the accepted forms)."""
    if "+" in ref and not Path(ref).exists():
        base, adapter = ref.split("+", 1)
        return TransformersModel(base, Path(adapter))
    path = Path(ref)
    if path.suffix == ".gguf":
        return GGUFModel(path, tokenizer_source=_tokenizer_near(path))
    if path.is_dir() and (path / "adapter").is_dir():
        return _open_run(path)
    if ref.startswith("packaged:") or resolve(ref).kind == "gguf":
        exported = base_model_gguf(ref, gguf_type)
        if exported is not None:
            return GGUFModel(exported, tokenizer_source=tokenizer_dir(ref))
    return TransformersModel(ref)


def _open_run(run_dir: Path) -> EvaluatedModel:
    """A training run's output: its GGUF if exported, else base + adapter."""
    ggufs = sorted((run_dir / "gguf").glob("*.gguf")) if (run_dir / "gguf").is_dir() else []
    if ggufs:
        return GGUFModel(ggufs[0], tokenizer_source=str(run_dir / "adapter"))
    adapter_config = json.loads((run_dir / "adapter" / "adapter_config.json").read_text(encoding="utf-8"))
    record = read_run_record(run_dir)
    base = (record.base_model if record else None) or adapter_config["base_model_name_or_path"]
    return TransformersModel(base, run_dir / "adapter")


def _tokenizer_near(gguf_path: Path) -> str:
    """The tokenizer saved next to an exported GGUF (run/gguf/x.gguf -> run/adapter), else the GGUF itself."""
    for candidate in (gguf_path.parent.parent / "adapter", gguf_path.parent.parent / "merged", gguf_path.parent):
        if (candidate / "tokenizer_config.json").exists():
            return str(candidate)
    return tokenizer_dir(str(gguf_path))
