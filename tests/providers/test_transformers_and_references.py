"""The local transformers provider (base + LoRA adapter) and serving references, registry included."""

from __future__ import annotations

from pathlib import Path

import pytest

from melancia.providers.base import ProviderError
from melancia.providers.references import resolve_model
from melancia.providers.transformers_local import TransformersProvider, shared_model
from tests.training.conftest import save_tiny_llama

MESSAGES = [{"role": "user", "content": "O que é ACOS?"}]


@pytest.fixture
def base_and_adapter(tiny_tokenizer, tmp_path: Path) -> tuple[Path, Path]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = save_tiny_llama(tiny_tokenizer, tmp_path / "base")
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():  # a non-zero update, so merging changes the outputs
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    adapter = tmp_path / "run" / "adapter"
    model.save_pretrained(adapter)
    tiny_tokenizer.save_pretrained(adapter)
    return base, adapter


def test_chat_stream_and_counts_on_cpu(base_and_adapter):
    base, adapter = base_and_adapter
    provider = TransformersProvider(str(base), adapter, name="local", device="cpu")
    completion = provider.chat(MESSAGES, max_tokens=12)
    assert 0 < completion.output_tokens <= 12 and completion.input_tokens > 5
    assert completion.model == f"{base}+adapter"
    streamed = "".join(provider.stream(MESSAGES, max_tokens=12))
    assert streamed == completion.text  # greedy: the same tokens either way
    assert provider.count_tokens("ACOS ROAS") > 0 and provider.health()


def test_the_adapter_changes_the_answer_and_weights_are_shared(base_and_adapter):
    base, adapter = base_and_adapter
    plain = TransformersProvider(str(base), name="plain", device="cpu")
    tuned = TransformersProvider(str(base), adapter, name="tuned", device="cpu")
    again = TransformersProvider(str(base), adapter, name="tuned-again", device="cpu")
    assert plain.chat(MESSAGES, max_tokens=12).text != tuned.chat(MESSAGES, max_tokens=12).text
    assert again.chat(MESSAGES, max_tokens=1) is not None
    assert shared_model(str(base), adapter, "cpu") is shared_model(str(base), adapter, "cpu")
    assert shared_model(str(base), adapter, "cpu").model is not shared_model(str(base), None, "cpu").model


def test_missing_model_is_a_provider_error(tmp_path):
    provider = TransformersProvider(str(tmp_path / "nothing-here"), device="cpu")
    assert not provider.health()
    with pytest.raises(ProviderError, match="cannot load"):
        provider.chat(MESSAGES)


def register_run(base: Path, adapter: Path, *, output_dir: Path | None) -> str:
    from melancia.tracking import tracked_run

    with tracked_run("melancia", "tiny") as tracker:
        tracker.log_params({"base_model": str(base)})
        tracker.log_artifacts(adapter, "adapter")
        if output_dir is not None:
            tracker.set_tags({"melancia.output_dir": str(output_dir)})
        return tracker.register("tiny-assistant", "adapter")


def promote_alias(version: str) -> None:
    from mlflow import MlflowClient

    MlflowClient().set_registered_model_alias("tiny-assistant", "champion", version)


def test_registry_alias_resolves_to_the_run_folder(base_and_adapter):
    base, adapter = base_and_adapter
    with pytest.raises(ProviderError, match=r"no alias 'champion'.*melancia promote"):
        resolve_model("models:/tiny-assistant@champion", "transformers")
    version = register_run(base, adapter, output_dir=adapter.parent)
    promote_alias(version)
    resolved = resolve_model("models:/tiny-assistant@champion", "transformers")
    assert (resolved.base, resolved.adapter, resolved.version) == (str(base), adapter, version)
    assert resolved.label == f"tiny-assistant v{version}"
    assert resolve_model(f"models:/tiny-assistant/{version}", "transformers").adapter == adapter


def test_registry_version_without_a_reachable_folder_is_downloaded(base_and_adapter, melancia_home):
    base, adapter = base_and_adapter
    version = register_run(base, adapter, output_dir=None)
    promote_alias(version)
    resolved = resolve_model("models:/tiny-assistant@champion", "transformers")
    assert resolved.adapter == melancia_home.resolve() / "models/registry/tiny-assistant" / f"v{version}" / "adapter"
    assert (resolved.adapter / "adapter_config.json").is_file() and resolved.base == str(base)
    provider = TransformersProvider(resolved.base, resolved.adapter, device="cpu", model_label=resolved.label)
    direct = TransformersProvider(str(base), adapter, device="cpu")
    assert provider.chat(MESSAGES, max_tokens=8).text == direct.chat(MESSAGES, max_tokens=8).text


def test_plain_references(base_and_adapter, tmp_path):
    base, adapter = base_and_adapter
    assert resolve_model(f"{base}+{adapter}", "transformers").adapter == adapter
    run = resolve_model(str(adapter.parent), "transformers")
    assert run.adapter == adapter and run.base == str(base)  # base read from adapter_config.json
    with pytest.raises(ProviderError, match="GGUF file not found"):
        resolve_model(str(tmp_path / "x.gguf"), "llama_cpp")
    with pytest.raises(ProviderError, match="served by the llama_cpp engine"):
        resolve_model(str(tmp_path / "x.gguf"), "transformers")
    gguf_dir = adapter.parent / "gguf"
    gguf_dir.mkdir()
    (gguf_dir / "run.gguf").write_bytes(b"GGUF")
    assert resolve_model(str(adapter.parent), "llama_cpp").gguf == gguf_dir / "run.gguf"
