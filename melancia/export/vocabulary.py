"""The byte-level BPE vocabulary, merges, special tokens and chat template of a GGUF file.

A padded vocabulary (``vocab_size`` larger than the tokenizer) gets ``[PAD<i>]`` tokens, so the token
list matches the embedding rows. The pre-tokenizer name decides how llama.cpp splits text before BPE;
when the base model was itself a GGUF it is copied from that file, the only source that knows it for
sure, so ``llama_cpp.Llama`` renders chats exactly as the Hugging Face tokenizer does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf

from melancia.export.errors import GGUFExportError
from melancia.export.hyperparameters import Hyperparameters

# Split regexes of tokenizer.json pre-tokenizers that llama.cpp knows by name.
KNOWN_SPLIT_PATTERNS = {
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": "llama-bpe",
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": "qwen2",
}


@dataclass(frozen=True)
class Vocabulary:
    """Token strings in id order with their GGUF token types, padded to the model's vocabulary size."""

    tokens: list[str]
    token_types: list[int]
    pre_tokenizer: str | None


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
        if pattern in KNOWN_SPLIT_PATTERNS:
            return KNOWN_SPLIT_PATTERNS[pattern]
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


def add_tokenizer_metadata(writer: gguf.GGUFWriter, model_dir: Path, hparams: Hyperparameters,
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
