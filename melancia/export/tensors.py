"""The tensors of a GGUF file: planned from the safetensors headers, then converted one at a time.

llama.cpp's ``llama`` graph applies RoPE to interleaved pairs while Hugging Face rotates halves, so
``q_proj`` and ``k_proj`` rows are permuted exactly as ``convert_hf_to_gguf.py`` does (``qwen2`` uses the
halves layout in llama.cpp too, so its weights are copied as they are). Norms and biases stay F32.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np
from safetensors import safe_open

from melancia.export.errors import GGUFExportError
from melancia.export.hyperparameters import Hyperparameters

IGNORED_TENSOR_SUFFIXES = ("rotary_emb.inv_freq",)


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


def plan_tensors(model_dir: Path, hparams: Hyperparameters,
                 weight_type: gguf.GGMLQuantizationType) -> list[PlannedTensor]:
    """Every tensor to write, in safetensors order, named, shaped and typed, without loading any data."""
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
    if source_name.endswith(IGNORED_TENSOR_SUFFIXES):
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


def encode_tensor(data: np.ndarray, qtype: gguf.GGMLQuantizationType) -> np.ndarray:
    """``data`` (float32) as the bytes or floats GGUF stores for ``qtype``."""
    if qtype == gguf.GGMLQuantizationType.F32:
        return np.ascontiguousarray(data, dtype=np.float32)
    if qtype == gguf.GGMLQuantizationType.F16:
        return np.ascontiguousarray(data, dtype=np.float16)
    return gguf.quants.quantize(np.ascontiguousarray(data, dtype=np.float32), qtype)


def load_float32(handle: Any, source_name: str) -> np.ndarray:
    import torch  # heavy: loaded only when a tensor is converted (importing the gateway must not load it)

    return handle.get_tensor(source_name).to(torch.float32).numpy()
