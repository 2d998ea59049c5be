"""An adapter merged into an unquantised copy of its base, and the base exported like a fine-tune.

The merge always happens on a fresh, unquantised float32 copy of the base on CPU (never into 4-bit or
bf16 training weights), so the merged safetensors and the GGUF made from them carry the exact adapter
update.
"""

from __future__ import annotations

from pathlib import Path

from melancia.export.errors import GGUFExportError
from melancia.export.writer import export_gguf
from melancia.models.loading import model_dir, resolve


def merge_adapter(base_ref: str, adapter_dir: Path, out: Path) -> Path:
    """Merge the adapter into a float32 copy of the base and save it (safetensors, tokenizer included)."""
    # heavy: torch, peft and transformers load only when a merge runs (the gateway imports this module)
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(model_dir(base_ref), dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    merged.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(adapter_dir).save_pretrained(out)
    return out


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
