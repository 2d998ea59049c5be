"""What a finished run leaves behind: adapter, merged model, GGUF with an Ollama Modelfile.

The merge always happens on a fresh, unquantised float32 copy of the base on CPU (never into
4-bit or bf16 training weights), so the merged safetensors and the GGUF made from them carry the
exact adapter update.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from melancia.models.loading import model_dir, resolve
from melancia.training.config import TrainConfig
from melancia.training.gguf_export import GGUFExportError, export_gguf, write_modelfile


@dataclass
class Exports:
    """Paths of everything a run exported (None: not asked for)."""

    adapter: Path
    merged: Path | None = None
    gguf: Path | None = None
    modelfile: Path | None = None


def save_adapter(model: Any, tokenizer: Any, out: Path) -> Path:
    """PEFT adapter (safetensors + adapter_config.json) with the tokenizer and its chat template."""
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def merge_adapter(base_ref: str, adapter_dir: Path, out: Path) -> Path:
    """Merge the adapter into a float32 copy of the base and save it (safetensors, tokenizer included)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(model_dir(base_ref), dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    merged.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(adapter_dir).save_pretrained(out)
    return out


def export_all(config: TrainConfig, model: Any, tokenizer: Any, out_dir: Path) -> Exports:
    """Save the adapter, then (as configured) the merged model, its GGUF and a Modelfile."""
    exports = Exports(adapter=save_adapter(model, tokenizer, out_dir / "adapter"))
    if not config.export.merged:
        return exports
    exports.merged = merge_adapter(config.base_model, exports.adapter, out_dir / "merged")
    if config.export.gguf:
        source = resolve(config.base_model)
        exports.gguf = export_gguf(exports.merged, out_dir / "gguf" / f"{config.run_name}.gguf",
                                   file_type=config.export.gguf_type, name=config.run_name,
                                   reference_gguf=source.gguf_path)
        exports.modelfile = write_modelfile(exports.gguf, tokenizer.chat_template,
                                            system_prompt=config.system_prompt,
                                            out_path=exports.gguf.parent / "Modelfile")
    return exports


def base_model_gguf(base_ref: str, file_type: str) -> Path | None:
    """The unquantised base exported like the fine-tuned GGUF (same precision), so answers compare fairly."""
    location = Path(model_dir(base_ref))
    if not (location / "config.json").exists():
        return None
    target = location / f"base-{file_type}.gguf"
    if not target.exists():
        try:
            export_gguf(location, target, file_type=file_type, reference_gguf=resolve(base_ref).gguf_path)
        except GGUFExportError:
            return None
    return target
