"""GGUF export: metadata and weights round-trip, llama.cpp computes transformers' logits, errors are clear.

The models are tiny random Llama and Qwen2 networks built in milliseconds with the shared ChatML
tokenizer; their weights are scaled up so attention is sharp and a wrong q/k row order or a missing
bias would change llama.cpp's logits by far more than the tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch

from melancia.export import writer
from melancia.export.errors import GGUFExportError
from melancia.export.hyperparameters import read_hyperparameters
from melancia.export.modelfile import write_modelfile
from melancia.export.tensors import storage_type
from melancia.export.writer import export_gguf
from tests.conftest import CHATML_TEMPLATE

PROMPT = "O ACOS mede quanto você gastou em anúncios"
MODEL_CASES = {
    "llama-tied": ("llama", {"tie_word_embeddings": True}),
    "llama-untied": ("llama", {"tie_word_embeddings": False}),
    "qwen2-padded-vocab": ("qwen2", {"tie_word_embeddings": True, "extra_vocab": 16}),
}


def _randomise(model: torch.nn.Module) -> None:
    """Weights large enough for peaked attention; norms near 1; biases non-zero."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            param.copy_(1 + 0.1 * noise if "norm" in name else 0.2 * noise)


def build_model(folder: Path, tokenizer, kind: str, *, tie_word_embeddings: bool, extra_vocab: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    config_class, model_class = {"llama": (LlamaConfig, LlamaForCausalLM),
                                 "qwen2": (Qwen2Config, Qwen2ForCausalLM)}[kind]
    config = config_class(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                          intermediate_size=128, vocab_size=len(tokenizer) + extra_vocab, max_position_embeddings=256,
                          tie_word_embeddings=tie_word_embeddings, bos_token_id=tokenizer.bos_token_id,
                          eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = model_class(config).eval()
    _randomise(model)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model


@pytest.fixture(params=list(MODEL_CASES))
def tiny_model(request, tmp_path: Path, tiny_tokenizer):
    kind, options = MODEL_CASES[request.param]
    folder = tmp_path / "merged"
    return build_model(folder, tiny_tokenizer, kind, **options), folder


def _fields(reader: gguf.GGUFReader) -> dict:
    return {key: field.contents() for key, field in reader.fields.items()}


def _dequantized(tensor) -> np.ndarray:
    return gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(tuple(reversed(tensor.shape.tolist())))


def unpermute_from_llama_cpp(weights: np.ndarray, n_head: int) -> np.ndarray:
    """The inverse of the exporter's q/k row permutation, to compare with the Hugging Face weights."""
    return (weights.reshape(n_head, weights.shape[0] // n_head // 2, 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _hf_weights_by_gguf_name(model) -> dict[str, np.ndarray]:
    """The model's weights under GGUF names, q/k rows put back in llama.cpp order for comparison."""
    config = model.config
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA if config.model_type == "llama" else gguf.MODEL_ARCH.QWEN2,
                                     config.num_hidden_layers)
    weights = {}
    for name, value in model.state_dict().items():
        if name == "lm_head.weight" and config.tie_word_embeddings:
            continue
        weights[names.get_name(name, try_suffixes=(".weight", ".bias"))] = value.float().numpy()
    return weights


# --- metadata and tensors -------------------------------------------------------------------------


@pytest.mark.parametrize("file_type", ["f32", "f16", "q8_0"])
def test_metadata_and_tensors_round_trip(tiny_model, tiny_tokenizer, tmp_path: Path, file_type: str):
    model, folder = tiny_model
    config = model.config
    out = export_gguf(folder, tmp_path / "out" / "model.gguf", file_type=file_type, name="melancia-test")

    reader = gguf.GGUFReader(out)
    fields = _fields(reader)
    arch = config.model_type
    assert fields["general.architecture"] == arch
    assert fields["general.name"] == "melancia-test"
    assert fields["general.file_type"] == {"f32": 0, "f16": 1, "q8_0": 7}[file_type]
    assert fields[f"{arch}.context_length"] == 256
    assert fields[f"{arch}.embedding_length"] == 64
    assert fields[f"{arch}.block_count"] == 2
    assert fields[f"{arch}.feed_forward_length"] == 128
    assert fields[f"{arch}.attention.head_count"] == 4
    assert fields[f"{arch}.attention.head_count_kv"] == 2
    assert fields[f"{arch}.attention.layer_norm_rms_epsilon"] == pytest.approx(config.rms_norm_eps)
    assert fields[f"{arch}.rope.freq_base"] == pytest.approx(10000.0)
    assert fields[f"{arch}.rope.dimension_count"] == 16
    assert fields[f"{arch}.vocab_size"] == config.vocab_size

    tokens = fields["tokenizer.ggml.tokens"]
    real = len(tiny_tokenizer)
    assert fields["tokenizer.ggml.model"] == "gpt2"
    assert fields["tokenizer.ggml.pre"] == "gpt-2"  # a plain ByteLevel pre-tokenizer is GPT-2's regex
    assert tokens[:real] == tiny_tokenizer.convert_ids_to_tokens(list(range(real)))
    assert tokens[real:] == [f"[PAD{index}]" for index in range(real, config.vocab_size)]
    token_types = fields["tokenizer.ggml.token_type"]
    assert token_types[:3] == [gguf.TokenType.CONTROL] * 3  # <|endoftext|> <|im_start|> <|im_end|>
    assert set(token_types[3:real]) == {gguf.TokenType.NORMAL}
    assert set(token_types[real:]) <= {gguf.TokenType.UNUSED}
    assert len(fields["tokenizer.ggml.merges"]) > 0
    assert fields["tokenizer.ggml.bos_token_id"] == tiny_tokenizer.bos_token_id
    assert fields["tokenizer.ggml.eos_token_id"] == tiny_tokenizer.eos_token_id
    assert fields["tokenizer.ggml.padding_token_id"] == tiny_tokenizer.pad_token_id
    assert fields["tokenizer.ggml.add_bos_token"] is False
    assert fields["tokenizer.chat_template"] == CHATML_TEMPLATE

    expected = _hf_weights_by_gguf_name(model)
    written = {tensor.name: tensor for tensor in reader.tensors}
    assert set(written) == set(expected)
    assert ("output.weight" in written) == (not config.tie_word_embeddings)
    tolerance = {"f32": 0, "f16": 1e-3, "q8_0": 1e-2}[file_type]
    for name, tensor in written.items():
        if tensor.shape.size == 1:
            assert tensor.tensor_type == gguf.GGMLQuantizationType.F32, name
        else:
            assert tensor.tensor_type == gguf.GGMLQuantizationType[file_type.upper()], name
        actual = _dequantized(tensor)
        if arch == "llama" and name.endswith(("attn_q.weight", "attn_k.weight")):
            actual = unpermute_from_llama_cpp(actual, 4 if "attn_q" in name else 2)
        np.testing.assert_allclose(actual, expected[name], rtol=0, atol=tolerance, err_msg=name)


def test_qwen2_keeps_attention_biases(tmp_path: Path, tiny_tokenizer):
    build_model(tmp_path / "merged", tiny_tokenizer, "qwen2", tie_word_embeddings=False)
    reader = gguf.GGUFReader(export_gguf(tmp_path / "merged", tmp_path / "model.gguf"))
    names = {tensor.name for tensor in reader.tensors}
    assert {"blk.0.attn_q.bias", "blk.0.attn_k.bias", "blk.0.attn_v.bias", "output.weight"} <= names


def test_rows_outside_whole_q8_0_blocks_fall_back_to_f16():
    q8_0 = gguf.GGMLQuantizationType.Q8_0
    assert storage_type((64, 96), q8_0) == q8_0
    assert storage_type((64, 48), q8_0) == gguf.GGMLQuantizationType.F16
    assert storage_type((64,), q8_0) == gguf.GGMLQuantizationType.F32


def test_rope_theta_read_from_either_config_layout(tmp_path: Path, tiny_tokenizer):
    build_model(tmp_path, tiny_tokenizer, "llama", tie_word_embeddings=True)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["rope_parameters"]["rope_theta"] == 10000.0  # transformers 5 layout
    config.pop("rope_parameters")
    config["rope_theta"] = 500000.0  # transformers 4 layout
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert read_hyperparameters(tmp_path).rope_theta == 500000.0


def test_reference_gguf_supplies_pre_tokenizer_and_extra_tokenizer_keys(tmp_path: Path, tiny_tokenizer):
    build_model(tmp_path / "merged", tiny_tokenizer, "llama", tie_word_embeddings=True)
    reference = tmp_path / "base.gguf"
    _write_reference_gguf(reference, n_tokens=len(tiny_tokenizer))

    out = export_gguf(tmp_path / "merged", tmp_path / "model.gguf", reference_gguf=reference)

    fields = _fields(gguf.GGUFReader(out))
    assert fields["tokenizer.ggml.pre"] == "smollm"
    assert fields["tokenizer.ggml.add_space_prefix"] is False
    assert fields["tokenizer.ggml.bos_token_id"] == tiny_tokenizer.bos_token_id  # from the model, not the reference


def test_reference_gguf_with_another_vocabulary_is_refused(tmp_path: Path, tiny_tokenizer):
    build_model(tmp_path / "merged", tiny_tokenizer, "llama", tie_word_embeddings=True)
    reference = tmp_path / "other.gguf"
    _write_reference_gguf(reference, n_tokens=len(tiny_tokenizer) + 1)
    with pytest.raises(GGUFExportError, match="401 tokens but the model has 400"):
        export_gguf(tmp_path / "merged", tmp_path / "model.gguf", reference_gguf=reference)


def _write_reference_gguf(path: Path, n_tokens: int) -> None:
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list([f"t{index}" for index in range(n_tokens)])
    writer.add_bos_token_id(7)
    writer.add_add_space_prefix(False)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()


# --- llama.cpp ------------------------------------------------------------------------------------


@pytest.fixture
def open_llama():
    """Opens GGUF files in llama.cpp and closes them when the test ends, not whenever the garbage
    collector runs (freeing a context from a collection in the middle of another model's work is a
    known source of crashes in long pytest sessions)."""
    import llama_cpp

    opened = []

    def open_(path: Path):
        # logits_all keeps every position's logits in .scores; an F32 KV cache keeps llama.cpp's
        # attention in float32 like transformers (the default F16 cache costs about 1e-3).
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=256, verbose=False, logits_all=True,
                              type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)
        opened.append(llm)
        return llm

    yield open_
    for llm in opened:
        llm.close()


@pytest.mark.integration
def test_llama_cpp_logits_match_transformers(tiny_model, tiny_tokenizer, tmp_path: Path, open_llama):
    model, folder = tiny_model
    llm = open_llama(export_gguf(folder, tmp_path / "model.gguf", file_type="f32"))
    ids = tiny_tokenizer(PROMPT).input_ids

    llm.eval(ids)
    ours = np.array(llm.scores[:len(ids)])
    with torch.no_grad():
        theirs = model(torch.tensor([ids])).logits[0].numpy()

    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() <= 1e-3 * np.abs(theirs).max()


@pytest.mark.integration
def test_llama_cpp_chats_with_the_tokenizers_template(tiny_model, tiny_tokenizer, tmp_path: Path, open_llama):
    _, folder = tiny_model
    llm = open_llama(export_gguf(folder, tmp_path / "model.gguf"))  # the default q8_0
    messages = [{"role": "system", "content": "Você é a MelancIA."}, {"role": "user", "content": "O que é ACOS? 42"}]

    assert llm.metadata["tokenizer.chat_template"] == tiny_tokenizer.chat_template
    prompt = tiny_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert llm.tokenize(prompt.encode(), add_bos=False, special=True) == tiny_tokenizer(
        prompt, add_special_tokens=False).input_ids

    reply = llm.create_chat_completion(messages=messages, max_tokens=5, temperature=0.0, seed=0)
    assert reply["usage"]["prompt_tokens"] == len(tiny_tokenizer(prompt, add_special_tokens=False).input_ids)
    # Not <= 5: llama-cpp-python keeps sampling past max_tokens while the text ends in a partial
    # UTF-8 character, which a random model emits often.
    assert reply["usage"]["completion_tokens"] >= 1
    assert reply["choices"][0]["finish_reason"] in {"length", "stop"}
    assert isinstance(reply["choices"][0]["message"]["content"], str)


# --- errors and atomic writes ---------------------------------------------------------------------


def test_unsupported_model_type_is_refused_and_nothing_is_written(tmp_path: Path, tiny_tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=len(tiny_tokenizer))).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    out_dir = tmp_path / "out"

    with pytest.raises(GGUFExportError, match=r"model_type 'gpt2' is not supported.*convert_hf_to_gguf\.py"):
        export_gguf(folder, out_dir / "model.gguf")
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_failure_mid_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path: Path, tiny_tokenizer,
                                                                           monkeypatch: pytest.MonkeyPatch):
    build_model(tmp_path / "merged", tiny_tokenizer, "llama", tie_word_embeddings=True)
    out = tmp_path / "out" / "model.gguf"
    out.parent.mkdir()
    out.write_bytes(b"previous export")
    calls = []

    def failing_encode(data, qtype):
        calls.append(qtype)
        if len(calls) == 3:
            raise OSError("disk full")
        return original(data, qtype)

    original = writer.encode_tensor
    monkeypatch.setattr(writer, "encode_tensor", failing_encode)
    with pytest.raises(OSError, match="disk full"):
        export_gguf(tmp_path / "merged", out)

    assert out.read_bytes() == b"previous export"
    assert [path.name for path in out.parent.iterdir()] == ["model.gguf"]


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_sentencepiece_style_tokenizer_is_refused(tmp_path: Path, tiny_tokenizer):
    build_model(tmp_path, tiny_tokenizer, "llama", tie_word_embeddings=True)
    metaspace = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
    _edit_json(tmp_path / "tokenizer.json", lambda data: data.update(pre_tokenizer=metaspace, decoder=metaspace))
    with pytest.raises(GGUFExportError, match="only byte-level BPE tokenizers"):
        export_gguf(tmp_path, tmp_path / "model.gguf")


def test_scaled_rope_is_refused(tmp_path: Path, tiny_tokenizer):
    build_model(tmp_path, tiny_tokenizer, "llama", tie_word_embeddings=True)
    yarn = {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 64}
    _edit_json(tmp_path / "config.json", lambda config: config.update(rope_parameters=yarn))
    with pytest.raises(GGUFExportError, match="RoPE scaling 'yarn' is not supported"):
        export_gguf(tmp_path, tmp_path / "model.gguf")


def test_unknown_file_type_and_lora_adapter_are_refused(tmp_path: Path):
    with pytest.raises(GGUFExportError, match="unknown GGUF file type 'q4_k'"):
        export_gguf(tmp_path, tmp_path / "model.gguf", file_type="q4_k")
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(GGUFExportError, match="LoRA adapter.*merge"):
        export_gguf(tmp_path, tmp_path / "model.gguf")


# --- Ollama Modelfile -----------------------------------------------------------------------------


def test_modelfile_for_chatml(tmp_path: Path):
    gguf_path = tmp_path / "melancia-q8_0.gguf"
    out = write_modelfile(gguf_path, CHATML_TEMPLATE, system_prompt="Você é a MelancIA.",
                          out_path=tmp_path / "Modelfile")

    text = out.read_text(encoding="utf-8")
    assert text.startswith("FROM ./melancia-q8_0.gguf\n")
    template = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    assert "{{ .System }}<|im_end|>" in template
    assert "{{- range $i, $_ := .Messages }}" in template
    assert "<|im_start|>assistant\n{{ end }}" in template  # the generation prompt after the last user turn
    assert 'PARAMETER stop "<|im_start|>"\nPARAMETER stop "<|im_end|>"' in text
    assert 'SYSTEM """Você é a MelancIA."""' in text


@pytest.mark.parametrize(("chat_template", "stop"), [
    ("{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>' }}", "<|eot_id|>"),
    ("{{ '<|user|>\n' + message['content'] + '<|end|>' }}", "<|end|>"),
])
def test_modelfile_detects_llama3_and_phi3(tmp_path: Path, chat_template: str, stop: str):
    text = write_modelfile(tmp_path / "m.gguf", chat_template, system_prompt=None,
                           out_path=tmp_path / "Modelfile").read_text()
    assert f'PARAMETER stop "{stop}"' in text
    assert "SYSTEM" not in text


def test_modelfile_for_an_unknown_template_defers_to_the_gguf(tmp_path: Path):
    text = write_modelfile(tmp_path / "m.gguf", "{{ messages[0]['content'] }}", system_prompt=None,
                           out_path=tmp_path / "Modelfile").read_text()
    assert "TEMPLATE" not in text and "PARAMETER stop" not in text
    assert "# Unknown chat template family: Ollama uses the chat template stored in the GGUF." in text


def test_modelfile_refuses_a_system_prompt_it_cannot_quote(tmp_path: Path):
    with pytest.raises(GGUFExportError, match='contains """'):
        write_modelfile(tmp_path / "m.gguf", CHATML_TEMPLATE, system_prompt='say """hi"""',
                        out_path=tmp_path / "Modelfile")
    assert not (tmp_path / "Modelfile").exists()
