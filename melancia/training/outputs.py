"""What a finished run leaves behind: adapter, merged model, GGUF with an Ollama Modelfile.

The adapter is saved here; the merge and the GGUF are :mod:`melancia.export`'s, asked for by the
run's export config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from melancia.export.merge import merge_adapter
from melancia.export.modelfile import write_modelfile
from melancia.export.writer import export_gguf
from melancia.models.loading import resolve
from melancia.training.config import TrainConfig


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
