"""What llama.cpp needs from a model's ``config.json``: architecture, shapes, RoPE, written as GGUF metadata.

Supported architectures are ``llama`` and ``qwen2``; anything else (and any RoPE scaling or sliding
window) is refused with a pointer to llama.cpp's ``convert_hf_to_gguf.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf

from melancia.export.errors import GGUFExportError

ARCHITECTURES = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2}


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


def add_model_metadata(writer: gguf.GGUFWriter, hparams: Hyperparameters, name: str,
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
