"""The llama.cpp provider on a real GGUF (a tiny random llama exported by our exporter)."""

import pytest

from melancia.providers import Provider, ProviderError
from melancia.providers.llama_cpp import LlamaCppProvider
from melancia.export.writer import export_gguf
from tests.training.conftest import save_tiny_llama


@pytest.fixture
def tiny_gguf(tiny_tokenizer, tmp_path):
    model = save_tiny_llama(tiny_tokenizer, tmp_path / "model")
    return export_gguf(model, tmp_path / "tiny.gguf", file_type="f32")


def test_chat_stream_and_token_count_through_llama_cpp(tiny_gguf, tiny_tokenizer):
    provider = LlamaCppProvider(tiny_gguf, n_ctx=512)
    assert isinstance(provider, Provider) and provider.model == "tiny" and provider.health()
    messages = [{"role": "user", "content": "O que é ACOS?"}]
    completion = provider.chat(messages, max_tokens=6, seed=1)
    assert 1 <= completion.output_tokens <= 8 and completion.input_tokens > 5
    streamed = "".join(provider.stream(messages, max_tokens=6, seed=1))
    assert streamed == completion.text  # greedy: the same answer either way
    assert provider.count_tokens("ACOS e ROAS") == len(tiny_tokenizer("ACOS e ROAS")["input_ids"])


def test_a_missing_file_is_a_provider_error_and_unhealthy(tmp_path):
    provider = LlamaCppProvider(tmp_path / "absent.gguf")
    assert provider.health() is False
    with pytest.raises(ProviderError, match="GGUF file not found"):
        provider.chat([{"role": "user", "content": "oi"}])
