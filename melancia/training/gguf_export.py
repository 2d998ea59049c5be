"""Export a Hugging Face model directory as one GGUF file that llama.cpp and Ollama load and chat with.

The input is what ``save_pretrained`` writes for a float model (for instance a LoRA-merged
fine-tune): ``config.json``, ``*.safetensors`` and the tokenizer files. The output carries the
weights (``f32``, ``f16`` or ``q8_0``), the hyperparameters llama.cpp needs, the byte-level BPE
vocabulary and merges, the special token ids and the chat template, so ``llama_cpp.Llama`` renders
chats exactly as the Hugging Face tokenizer does.

Supported architectures are ``llama`` and ``qwen2``; anything else is refused with a pointer to
llama.cpp's ``convert_hf_to_gguf.py``. Pitfalls this module exists to avoid:

* llama.cpp's ``llama`` graph applies RoPE to interleaved pairs while Hugging Face rotates halves,
  so ``q_proj`` and ``k_proj`` rows are permuted exactly as ``convert_hf_to_gguf.py`` does
  (``qwen2`` uses the halves layout in llama.cpp too, so its weights are copied as they are);
* a padded vocabulary (``vocab_size`` larger than the tokenizer) gets ``[PAD<i>]`` tokens, so the
  token list matches the embedding rows;
* the pre-tokenizer name decides how llama.cpp splits text before BPE; when the base model was
  itself a GGUF it is copied from that file, the only source that knows it for sure;
* a crash half-way never leaves a truncated file behind: the GGUF is written to a temporary file
  in the same folder and renamed over ``out_path`` only when complete.

:func:`write_modelfile` writes the Ollama ``Modelfile`` that goes next to the GGUF.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from melancia.errors import MelanciaError

ARCHITECTURES = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2}

FILE_TYPES = {
    "f32": (gguf.LlamaFileType.ALL_F32, gguf.GGMLQuantizationType.F32),
    "f16": (gguf.LlamaFileType.MOSTLY_F16, gguf.GGMLQuantizationType.F16),
    "q8_0": (gguf.LlamaFileType.MOSTLY_Q8_0, gguf.GGMLQuantizationType.Q8_0),
}

# Split regexes of tokenizer.json pre-tokenizers that llama.cpp knows by name.
_KNOWN_SPLIT_PATTERNS = {
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": "llama-bpe",
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": "qwen2",
}

_IGNORED_TENSOR_SUFFIXES = ("rotary_emb.inv_freq",)


class GGUFExportError(MelanciaError, ValueError):
    """The model directory cannot be exported to GGUF here; the message says why and what to do."""


@dataclass(frozen=True)
class Hyperparameters:
    """What llama.cpp needs from ``config.json``, read once and checked."""

    model_type: str
    block_count: int
    embedding_length: int
    feed_forward_length: int
    head_count: int
    head_count_kv: int
    head_dim: int
    context_length: int
    rms_norm_eps: float
    rope_theta: float
    vocab_size: int
    tied_embeddings: bool

    @property
    def arch(self) -> gguf.MODEL_ARCH:
        return ARCHITECTURES[self.model_type]


@dataclass(frozen=True)
class Vocabulary:
    """Token strings in id order with their GGUF token types, padded to the model's vocabulary size."""

    tokens: list[str]
    token_types: list[int]
    pre_tokenizer: str | None


@dataclass(frozen=True)
class PlannedTensor:
    """One tensor of the output: where it comes from, its GGUF name, shape and storage type."""

    source_name: str
    source_file: Path
    name: str
    shape: tuple[int, ...]
    qtype: gguf.GGMLQuantizationType
    permute_heads: int | None

    @property
    def nbytes(self) -> int:
        return int(np.prod(gguf.quant_shape_to_byte_shape(self.shape, self.qtype)))


def export_gguf(model_dir: Path, out_path: Path, *, file_type: str = "q8_0", name: str | None = None,
                reference_gguf: Path | None = None) -> Path:
    """Write ``model_dir`` (Hugging Face layout, float weights) as one GGUF file at ``out_path``.

    ``file_type`` is ``f32``, ``f16`` or ``q8_0`` (norms and biases always stay F32).
    ``reference_gguf`` is the GGUF the base model came from, if any: its tokenizer settings
    (pre-tokenizer name and any ``tokenizer.ggml.*`` key not derived here) are copied.
    """
    model_dir, out_path = Path(model_dir), Path(out_path)
    if file_type not in FILE_TYPES:
        raise GGUFExportError(f"unknown GGUF file type {file_type!r}; choose one of {sorted(FILE_TYPES)}")
    hparams = read_hyperparameters(model_dir)
    vocabulary = read_vocabulary(model_dir, hparams.vocab_size)
    tensors = plan_tensors(model_dir, hparams, FILE_TYPES[file_type][1])
    writer = gguf.GGUFWriter(None, gguf.MODEL_ARCH_NAMES[hparams.arch])
    _add_model_metadata(writer, hparams, name or model_dir.name, FILE_TYPES[file_type][0])
    _add_tokenizer_metadata(writer, model_dir, hparams, vocabulary, reference_gguf)
    for tensor in tensors:
        writer.add_tensor_info(tensor.name, tensor.shape, np.dtype(np.float32), tensor.nbytes, raw_dtype=tensor.qtype)
    _write_atomically(out_path, lambda tmp: _write_gguf(writer, tmp, tensors))
    return out_path


# --- config ---------------------------------------------------------------------------------------


def read_hyperparameters(model_dir: Path) -> Hyperparameters:
    """Parse and check ``config.json``; unsupported architectures or RoPE scaling raise."""
    if (model_dir / "adapter_config.json").exists():
        raise GGUFExportError(f"{model_dir} holds a LoRA adapter, not a full model; merge it into the base model "
                              "(merge_and_unload + save_pretrained) and export the merged directory")
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise GGUFExportError(f"{model_dir}: no config.json; expected a directory written by save_pretrained")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    model_type = config.get("model_type")
    if model_type not in ARCHITECTURES:
        raise GGUFExportError(
            f"{model_dir}: model_type {model_type!r} is not supported by this exporter (supported: "
            f"{', '.join(sorted(ARCHITECTURES))}); convert it with llama.cpp's convert_hf_to_gguf.py instead")
    _check_rope_scaling(config, model_dir)
    if config.get("use_sliding_window"):
        raise GGUFExportError(f"{model_dir}: sliding-window attention (use_sliding_window) is not supported; "
                              "convert it with llama.cpp's convert_hf_to_gguf.py instead")
    head_count = config["num_attention_heads"]
    return Hyperparameters(
        model_type=model_type,
        block_count=config["num_hidden_layers"],
        embedding_length=config["hidden_size"],
        feed_forward_length=config["intermediate_size"],
        head_count=head_count,
        head_count_kv=config.get("num_key_value_heads") or head_count,
        head_dim=config.get("head_dim") or config["hidden_size"] // head_count,
        context_length=config["max_position_embeddings"],
        rms_norm_eps=config["rms_norm_eps"],
        rope_theta=_rope_theta(config),
        vocab_size=config["vocab_size"],
        tied_embeddings=bool(config.get("tie_word_embeddings", False)),
    )


def _rope_settings(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The RoPE dicts of a config: ``rope_scaling`` (transformers 4) and ``rope_parameters`` (transformers 5)."""
    return [value for key in ("rope_scaling", "rope_parameters") if isinstance(value := config.get(key), dict)]


def _rope_theta(config: dict[str, Any]) -> float:
    if config.get("rope_theta") is not None:
        return float(config["rope_theta"])
    for settings in _rope_settings(config):
        if settings.get("rope_theta") is not None:
            return float(settings["rope_theta"])
    return 10000.0


def _check_rope_scaling(config: dict[str, Any], model_dir: Path) -> None:
    for settings in _rope_settings(config):
        kind = settings.get("rope_type") or settings.get("type")
        if kind not in (None, "default"):
            raise GGUFExportError(f"{model_dir}: RoPE scaling {kind!r} is not supported by this exporter (only "
                                  "unscaled RoPE); convert it with llama.cpp's convert_hf_to_gguf.py instead")


def _add_model_metadata(writer: gguf.GGUFWriter, hparams: Hyperparameters, name: str,
                        file_type: gguf.LlamaFileType) -> None:
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_context_length(hparams.context_length)
    writer.add_embedding_length(hparams.embedding_length)
    writer.add_block_count(hparams.block_count)
    writer.add_feed_forward_length(hparams.feed_forward_length)
    writer.add_head_count(hparams.head_count)
    writer.add_head_count_kv(hparams.head_count_kv)
    if hparams.head_dim != hparams.embedding_length // hparams.head_count:
        writer.add_key_length(hparams.head_dim)
        writer.add_value_length(hparams.head_dim)
    writer.add_layer_norm_rms_eps(hparams.rms_norm_eps)
    writer.add_rope_freq_base(hparams.rope_theta)
    writer.add_rope_dimension_count(hparams.head_dim)
    writer.add_vocab_size(hparams.vocab_size)
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


# --- tokenizer ------------------------------------------------------------------------------------


def read_vocabulary(model_dir: Path, vocab_size: int) -> Vocabulary:
    """Tokens of ``tokenizer.json`` in id order (added tokens included) with their GGUF types."""
    path = model_dir / "tokenizer.json"
    if not path.is_file():
        raise GGUFExportError(f"{model_dir}: no tokenizer.json; only byte-level BPE tokenizers are supported "
                              "(SentencePiece tokenizer.model files are not)")
    data = json.loads(path.read_text(encoding="utf-8"))
    model = data.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback") or not _is_byte_level(data):
        raise GGUFExportError(
            f"{path}: the tokenizer is {model.get('type')!r} without byte-level pre-tokenization (SentencePiece "
            "style); only byte-level BPE tokenizers (GPT-2, Llama 3, Qwen2, SmolLM) are supported")
    by_id = {index: (token, gguf.TokenType.NORMAL) for token, index in model["vocab"].items()}
    for added in data.get("added_tokens", []):
        kind = gguf.TokenType.CONTROL if added.get("special") else gguf.TokenType.USER_DEFINED
        by_id[added["id"]] = (added["content"], kind)
    if max(by_id) >= vocab_size:
        raise GGUFExportError(f"{path}: token id {max(by_id)} does not fit the model's vocab_size {vocab_size}")
    padded = [by_id.get(index, (f"[PAD{index}]", gguf.TokenType.UNUSED)) for index in range(vocab_size)]
    return Vocabulary(tokens=[token for token, _ in padded], token_types=[int(kind) for _, kind in padded],
                      pre_tokenizer=_pre_tokenizer_name(data.get("pre_tokenizer")))


def _components(node: Any) -> Iterator[dict[str, Any]]:
    """A pre-tokenizer or decoder and, for a ``Sequence``, each of its parts."""
    if not isinstance(node, dict):
        return
    yield node
    for child in node.get("pretokenizers") or node.get("decoders") or []:
        yield from _components(child)


def _is_byte_level(data: dict[str, Any]) -> bool:
    parts = [*_components(data.get("pre_tokenizer")), *_components(data.get("decoder"))]
    return any(part.get("type") == "ByteLevel" for part in parts)


def _pre_tokenizer_name(pre_tokenizer: Any) -> str | None:
    """llama.cpp's name for a tokenizer.json pre-tokenizer it reproduces exactly, else None."""
    if isinstance(pre_tokenizer, dict) and pre_tokenizer.get("type") == "ByteLevel":
        return "gpt-2" if pre_tokenizer.get("use_regex", True) else None
    for part in _components(pre_tokenizer):
        pattern = (part.get("pattern") or {}).get("Regex") if part.get("type") == "Split" else None
        if pattern in _KNOWN_SPLIT_PATTERNS:
            return _KNOWN_SPLIT_PATTERNS[pattern]
    return None


def default_pre_tokenizer(hparams: Hyperparameters, vocabulary: Vocabulary) -> str:
    """The ``tokenizer.ggml.pre`` value when no reference GGUF says better."""
    if vocabulary.pre_tokenizer:
        return vocabulary.pre_tokenizer
    if hparams.model_type == "qwen2":
        return "qwen2"
    if hparams.model_type == "llama" and hparams.vocab_size >= 128000:
        return "llama-bpe"
    return "default"


def _add_tokenizer_metadata(writer: gguf.GGUFWriter, model_dir: Path, hparams: Hyperparameters,
                            vocabulary: Vocabulary, reference_gguf: Path | None) -> None:
    reference = _reference_tokenizer_fields(reference_gguf, len(vocabulary.tokens)) if reference_gguf else {}
    pre = reference.pop(gguf.Keys.Tokenizer.PRE, None)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre.contents() if pre is not None else default_pre_tokenizer(hparams, vocabulary))
    writer.add_token_list(vocabulary.tokens)
    writer.add_token_types(vocabulary.token_types)
    special = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=len(vocabulary.tokens))
    if not special.merges:
        raise GGUFExportError(f"{model_dir}: tokenizer.json has no BPE merges")
    special.add_to_gguf(writer, quiet=True)
    for key, field in reference.items():
        if not _has_key(writer, key):
            _copy_field(writer, key, field)
    if not _has_key(writer, gguf.Keys.Tokenizer.ADD_BOS):
        writer.add_add_bos_token(False)


def _reference_tokenizer_fields(reference_gguf: Path, n_tokens: int) -> dict[str, Any]:
    """The ``tokenizer.ggml.*`` fields of the base model's GGUF, checked to describe the same vocabulary."""
    try:
        reader = gguf.GGUFReader(reference_gguf)
    except (OSError, ValueError) as exc:
        raise GGUFExportError(f"{reference_gguf}: cannot read the reference GGUF ({exc})") from None
    fields = {key: field for key, field in reader.fields.items() if key.startswith("tokenizer.ggml.")}
    tokens = fields.get(gguf.Keys.Tokenizer.LIST)
    if tokens is not None and len(tokens.data) != n_tokens:
        raise GGUFExportError(f"{reference_gguf} has {len(tokens.data)} tokens but the model has {n_tokens}; "
                              "pass the GGUF the model was fine-tuned from, or none")
    return fields


def _has_key(writer: gguf.GGUFWriter, key: str) -> bool:
    return any(key in kv_data for kv_data in writer.kv_data)


def _copy_field(writer: gguf.GGUFWriter, key: str, field: Any) -> None:
    main_type = field.types[0]
    if main_type == gguf.GGUFValueType.ARRAY:
        writer.add_key_value(key, field.contents(), main_type, sub_type=field.types[-1])
    else:
        writer.add_key_value(key, field.contents(), main_type)


# --- tensors --------------------------------------------------------------------------------------


def plan_tensors(model_dir: Path, hparams: Hyperparameters,
                 weight_type: gguf.GGMLQuantizationType) -> list[PlannedTensor]:
    """Every tensor to write, in safetensors order, named, shaped and typed, without loading any data."""
    from safetensors import safe_open

    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise GGUFExportError(f"{model_dir}: no *.safetensors weights; save the model with save_pretrained")
    names = gguf.get_tensor_name_map(hparams.arch, hparams.block_count)
    planned = []
    for path in files:
        with safe_open(path, framework="pt") as handle:
            source_names = handle.keys()  # safe_open handles are not iterable
            for source_name in source_names:
                shape = tuple(handle.get_slice(source_name).get_shape())
                tensor = _plan_tensor(source_name, path, shape, names, hparams, weight_type)
                if tensor is not None:
                    planned.append(tensor)
    _check_complete(planned, hparams, model_dir)
    return planned


def _plan_tensor(source_name: str, path: Path, shape: tuple[int, ...], names: gguf.TensorNameMap,
                 hparams: Hyperparameters, weight_type: gguf.GGMLQuantizationType) -> PlannedTensor | None:
    if source_name.endswith(_IGNORED_TENSOR_SUFFIXES):
        return None
    if source_name == "lm_head.weight" and hparams.tied_embeddings:
        return None  # llama.cpp reuses token_embd when output.weight is absent
    name = names.get_name(source_name, try_suffixes=(".weight", ".bias"))
    if name is None:
        raise GGUFExportError(f"{path.name}: tensor {source_name!r} has no GGUF counterpart for "
                              f"{hparams.model_type}; convert it with llama.cpp's convert_hf_to_gguf.py instead")
    return PlannedTensor(source_name, path, name, shape, storage_type(shape, weight_type),
                         _permute_heads(source_name, hparams))


def storage_type(shape: tuple[int, ...], weight_type: gguf.GGMLQuantizationType) -> gguf.GGMLQuantizationType:
    """F32 for vectors; ``weight_type`` for matrices, F16 where a row does not fill whole Q8_0 blocks."""
    if len(shape) < 2:
        return gguf.GGMLQuantizationType.F32
    block_size, _ = gguf.GGML_QUANT_SIZES[weight_type]
    if shape[-1] % block_size:
        return gguf.GGMLQuantizationType.F16
    return weight_type


def _permute_heads(source_name: str, hparams: Hyperparameters) -> int | None:
    """Head count for the RoPE row permutation of a llama q/k projection, None for every other tensor."""
    if hparams.model_type != "llama":
        return None
    if ".q_proj." in source_name:
        return hparams.head_count
    if ".k_proj." in source_name:
        return hparams.head_count_kv
    return None


def _check_complete(planned: list[PlannedTensor], hparams: Hyperparameters, model_dir: Path) -> None:
    written = {tensor.name for tensor in planned}
    if "token_embd.weight" not in written:
        raise GGUFExportError(f"{model_dir}: the safetensors files have no token embedding")
    if not hparams.tied_embeddings and "output.weight" not in written:
        raise GGUFExportError(f"{model_dir}: tie_word_embeddings is false but there is no lm_head.weight")


def permute_for_llama_cpp(weights: np.ndarray, n_head: int) -> np.ndarray:
    """Reorder q/k projection rows from Hugging Face's rotate-half RoPE layout to llama.cpp's interleaved one."""
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def unpermute_from_llama_cpp(weights: np.ndarray, n_head: int) -> np.ndarray:
    """The inverse of :func:`permute_for_llama_cpp`."""
    return (weights.reshape(n_head, weights.shape[0] // n_head // 2, 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def encode_tensor(data: np.ndarray, qtype: gguf.GGMLQuantizationType) -> np.ndarray:
    """``data`` (float32) as the bytes or floats GGUF stores for ``qtype``."""
    if qtype == gguf.GGMLQuantizationType.F32:
        return np.ascontiguousarray(data, dtype=np.float32)
    if qtype == gguf.GGMLQuantizationType.F16:
        return np.ascontiguousarray(data, dtype=np.float16)
    return gguf.quants.quantize(np.ascontiguousarray(data, dtype=np.float32), qtype)


def _load_float32(handle: Any, source_name: str) -> np.ndarray:
    import torch

    return handle.get_tensor(source_name).to(torch.float32).numpy()


def _write_gguf(writer: gguf.GGUFWriter, path: Path, tensors: list[PlannedTensor]) -> None:
    """Header, metadata and tensor infos, then each tensor loaded, converted and written one at a time."""
    from safetensors import safe_open

    try:
        writer.write_header_to_file(path)
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        with contextlib.ExitStack() as stack:
            handles: dict[Path, Any] = {}
            for tensor in tensors:
                if tensor.source_file not in handles:
                    handles[tensor.source_file] = stack.enter_context(safe_open(tensor.source_file, framework="pt"))
                data = _load_float32(handles[tensor.source_file], tensor.source_name)
                if tensor.permute_heads is not None:
                    data = permute_for_llama_cpp(data, tensor.permute_heads)
                writer.write_tensor_data(encode_tensor(data, tensor.qtype))
    finally:
        writer.close()


def _write_atomically(out_path: Path, write: Callable[[Path], None]) -> None:
    """Run ``write`` on a temporary sibling of ``out_path`` and rename it into place only if it succeeds."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)


# --- Ollama Modelfile -----------------------------------------------------------------------------


@dataclass(frozen=True)
class OllamaTemplate:
    """An Ollama Go template for one chat-template family and the stop strings that end a turn."""

    family: str
    marker: tuple[str, ...]
    template: str
    stops: tuple[str, ...]


_CHATML_TEMPLATE = """{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "user" }}<|im_start|>user
{{ .Content }}<|im_end|>
{{ else if eq .Role "assistant" }}<|im_start|>assistant
{{ .Content }}{{ if not $last }}<|im_end|>
{{ end }}
{{- end }}
{{- if and (ne .Role "assistant") $last }}<|im_start|>assistant
{{ end }}
{{- end }}"""

_LLAMA3_TEMPLATE = """{{- if .System }}<|start_header_id|>system<|end_header_id|>

{{ .System }}<|eot_id|>
{{- end }}
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "user" }}<|start_header_id|>user<|end_header_id|>

{{ .Content }}<|eot_id|>
{{- else if eq .Role "assistant" }}<|start_header_id|>assistant<|end_header_id|>

{{ .Content }}{{ if not $last }}<|eot_id|>{{ end }}
{{- end }}
{{- if and (ne .Role "assistant") $last }}<|start_header_id|>assistant<|end_header_id|>

{{ end }}
{{- end }}"""

_PHI3_TEMPLATE = """{{- if .System }}<|system|>
{{ .System }}<|end|>
{{ end }}
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "user" }}<|user|>
{{ .Content }}<|end|>
{{ else if eq .Role "assistant" }}<|assistant|>
{{ .Content }}{{ if not $last }}<|end|>
{{ end }}
{{- end }}
{{- if and (ne .Role "assistant") $last }}<|assistant|>
{{ end }}
{{- end }}"""

OLLAMA_TEMPLATES = (
    OllamaTemplate("llama3", ("<|start_header_id|>",), _LLAMA3_TEMPLATE,
                   ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")),
    OllamaTemplate("chatml", ("<|im_start|>",), _CHATML_TEMPLATE, ("<|im_start|>", "<|im_end|>")),
    OllamaTemplate("phi3", ("<|user|>", "<|end|>"), _PHI3_TEMPLATE, ("<|end|>", "<|user|>", "<|assistant|>")),
)


def ollama_template_for(chat_template: str) -> OllamaTemplate | None:
    """The Ollama template of the family the Jinja ``chat_template`` belongs to, None if unknown."""
    for candidate in OLLAMA_TEMPLATES:
        if all(marker in chat_template for marker in candidate.marker):
            return candidate
    return None


def modelfile_text(gguf_reference: str, chat_template: str, system_prompt: str | None) -> str:
    """The text of an Ollama Modelfile for a GGUF referred to as ``gguf_reference``."""
    lines = [f"FROM {gguf_reference}", ""]
    template = ollama_template_for(chat_template)
    if template is None:
        lines += ["# Unknown chat template family: Ollama uses the chat template stored in the GGUF.", ""]
    else:
        lines += [f"# Chat template family: {template.family}", f'TEMPLATE """{template.template}"""', ""]
        lines += [f'PARAMETER stop "{stop}"' for stop in template.stops] + [""]
    if system_prompt:
        if '"""' in system_prompt:
            raise GGUFExportError('the system prompt contains """, which an Ollama Modelfile cannot quote')
        lines += [f'SYSTEM """{system_prompt}"""', ""]
    return "\n".join(lines)


def write_modelfile(gguf_path: Path, chat_template: str, *, system_prompt: str | None, out_path: Path) -> Path:
    """Write an Ollama ``Modelfile`` at ``out_path`` for ``gguf_path`` (``ollama create NAME -f Modelfile``)."""
    gguf_path, out_path = Path(gguf_path), Path(out_path)
    relative = Path(os.path.relpath(gguf_path.resolve(), out_path.parent.resolve())).as_posix()
    reference = relative if relative.startswith("../") else f"./{relative}"
    text = modelfile_text(reference, chat_template, system_prompt)
    _write_atomically(out_path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return out_path
