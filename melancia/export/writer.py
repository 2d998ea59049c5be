"""One GGUF file from a Hugging Face model directory: :func:`export_gguf`.

The input is what ``save_pretrained`` writes for a float model (for instance a LoRA-merged fine-tune):
``config.json``, ``*.safetensors`` and the tokenizer files. The output carries the weights (``f32``,
``f16`` or ``q8_0``), the hyperparameters llama.cpp needs, the vocabulary and merges, the special token
ids and the chat template. A crash half-way never leaves a truncated file behind: the GGUF is written
to a temporary file in the same folder and renamed over ``out_path`` only when complete.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gguf
import numpy as np
from safetensors import safe_open

from melancia.export.errors import GGUFExportError
from melancia.export.hyperparameters import add_model_metadata, read_hyperparameters
from melancia.export.tensors import PlannedTensor, encode_tensor, load_float32, permute_for_llama_cpp, plan_tensors
from melancia.export.vocabulary import add_tokenizer_metadata, read_vocabulary

FILE_TYPES = {
    "f32": (gguf.LlamaFileType.ALL_F32, gguf.GGMLQuantizationType.F32),
    "f16": (gguf.LlamaFileType.MOSTLY_F16, gguf.GGMLQuantizationType.F16),
    "q8_0": (gguf.LlamaFileType.MOSTLY_Q8_0, gguf.GGMLQuantizationType.Q8_0),
}


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
    add_model_metadata(writer, hparams, name or model_dir.name, FILE_TYPES[file_type][0])
    add_tokenizer_metadata(writer, model_dir, hparams, vocabulary, reference_gguf)
    for tensor in tensors:
        writer.add_tensor_info(tensor.name, tensor.shape, np.dtype(np.float32), tensor.nbytes, raw_dtype=tensor.qtype)
    write_atomically(out_path, lambda tmp: write_tensors(writer, tmp, tensors))
    return out_path


def write_tensors(writer: gguf.GGUFWriter, path: Path, tensors: list[PlannedTensor]) -> None:
    """Header, metadata and tensor infos, then each tensor loaded, converted and written one at a time."""
    try:
        writer.write_header_to_file(path)
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        with contextlib.ExitStack() as stack:
            handles: dict[Path, Any] = {}
            for tensor in tensors:
                if tensor.source_file not in handles:
                    handles[tensor.source_file] = stack.enter_context(safe_open(tensor.source_file, framework="pt"))
                data = load_float32(handles[tensor.source_file], tensor.source_name)
                if tensor.permute_heads is not None:
                    data = permute_for_llama_cpp(data, tensor.permute_heads)
                writer.write_tensor_data(encode_tensor(data, tensor.qtype))
    finally:
        writer.close()


def write_atomically(out_path: Path, write: Callable[[Path], None]) -> None:
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
