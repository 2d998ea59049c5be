from pathlib import Path

import pytest

from melancia.models import loading
from melancia.settings import get_settings


def test_resolve_kinds(tmp_path):
    packaged = loading.resolve("packaged:smollm2")
    assert packaged.kind == "gguf" and packaged.gguf_path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert packaged.gguf_path.exists()
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert loading.resolve(str(gguf)) == loading.ModelSource(str(gguf), "gguf", str(tmp_path), "m.gguf")
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    assert loading.resolve(str(tmp_path / "hf")).kind == "dir"
    assert loading.resolve("Qwen/Qwen2.5-0.5B-Instruct").kind == "hub"


@pytest.mark.parametrize("ref, message", [
    ("packaged:gpt5", "unknown packaged model"),
    ("missing.gguf", "GGUF file not found"),
    ("./not/here", "not a packaged model"),
])
def test_resolve_errors(ref, message):
    with pytest.raises(loading.ModelNotFoundError, match=message):
        loading.resolve(ref)


def test_directory_without_config_is_refused(tmp_path):
    with pytest.raises(loading.ModelNotFoundError, match="no config.json"):
        loading.resolve(str(tmp_path))


def test_materialise_is_atomic_and_done_once(tmp_path):
    calls = []

    def build(folder: Path) -> None:
        calls.append(folder)
        (folder / "weights").write_text("w")

    target = tmp_path / "cache" / "model"
    assert loading._materialise(target, build) == target
    assert loading._materialise(target, build) == target
    assert len(calls) == 1 and (target / "weights").read_text() == "w"

    def crash(folder: Path) -> None:
        (folder / "partial").write_text("x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        loading._materialise(tmp_path / "cache" / "other", crash)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["model"]


def test_model_cache_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("MELANCIA_MODEL_CACHE", str(tmp_path / "shared"))
    assert get_settings().paths.base_models == tmp_path / "shared"
    monkeypatch.delenv("MELANCIA_MODEL_CACHE")
    assert get_settings().paths.base_models == get_settings().paths.home / "models" / "base"


@pytest.mark.integration
def test_packaged_tokenizer_has_chatml_template():
    tok = loading.load_tokenizer("packaged:smollm2")
    text = tok.apply_chat_template([{"role": "user", "content": "O que é ACOS?"}], tokenize=False,
                                   add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n") and "O que é ACOS?" in text
    assert tok.eos_token == "<|im_end|>"
