"""What a provider's ``model`` names, resolved to files an engine can load.

A serving reference is one of:

* ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``: a version of the MLflow model registry, so
  serving follows promotion (``models:/melancia-assistant@champion``) without editing config. The
  version's training run folder is used when it is reachable (shared volume, same machine);
  otherwise its ``adapter`` artifact is downloaded and, for llama.cpp, merged and exported to GGUF
  once, under ``MELANCIA_HOME/models/registry/NAME/vVERSION``;
* a training run folder (``MELANCIA_HOME/runs/<name>``);
* a ``.gguf`` file;
* ``BASE+ADAPTER_DIR``;
* ``packaged:NAME``, a local Hugging Face folder or a hub id (a base model).
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from melancia.export.errors import GGUFExportError
from melancia.export.merge import base_model_gguf, merge_adapter
from melancia.export.writer import export_gguf
from melancia.models.loading import ModelNotFoundError, resolve
from melancia.providers.base import ProviderError
from melancia.settings import get_settings
from melancia.tracking import OUTPUT_DIR_TAG, read_run_record
from melancia.tracking import tracking_uri as resolve_uri

Engine = Literal["llama_cpp", "transformers"]
REGISTRY_REF = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w.-]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class ResolvedModel:
    """Files to load: a GGUF (llama.cpp) or a base with an optional adapter (transformers)."""

    label: str
    gguf: Path | None = None
    base: str | None = None
    adapter: Path | None = None
    version: str | None = None


def resolve_model(ref: str, engine: Engine, *, tracking_uri: str | None = None, gguf_type: str = "f16") -> ResolvedModel:
    """Resolve ``ref`` for ``engine``; :class:`ProviderError` says why when it cannot be served."""
    match = REGISTRY_REF.match(ref)
    if match:
        return _from_registry(match, engine, tracking_uri, gguf_type)
    if "+" in ref and not Path(ref).exists():
        base, adapter = ref.split("+", 1)
        return _from_adapter(base, Path(adapter), engine, gguf_type, label=ref)
    path = Path(ref)
    if path.suffix == ".gguf":
        if engine != "llama_cpp":
            raise ProviderError(f"{ref}: a GGUF file is served by the llama_cpp engine")
        if not path.is_file():
            raise ProviderError(f"{ref}: GGUF file not found")
        return ResolvedModel(label=path.stem, gguf=path)
    if path.is_dir() and (path / "adapter").is_dir():
        return _from_run_dir(path, engine, gguf_type, label=path.name)
    return _from_base(ref, engine, gguf_type)


def _from_base(ref: str, engine: Engine, gguf_type: str) -> ResolvedModel:
    try:
        resolve(ref)
        if engine == "transformers":
            return ResolvedModel(label=ref, base=ref)
        gguf = base_model_gguf(ref, gguf_type)
    except ModelNotFoundError as exc:
        raise ProviderError(str(exc)) from None
    if gguf is None:
        raise ProviderError(f"{ref}: cannot be exported to GGUF for llama.cpp; use the transformers engine")
    return ResolvedModel(label=ref, gguf=gguf)


def _from_run_dir(run_dir: Path, engine: Engine, gguf_type: str, *, label: str,
                  version: str | None = None) -> ResolvedModel:
    ggufs = sorted((run_dir / "gguf").glob("*.gguf")) if (run_dir / "gguf").is_dir() else []
    if engine == "llama_cpp" and ggufs:
        return ResolvedModel(label=label, gguf=ggufs[0], version=version)
    record = read_run_record(run_dir)
    base = (record.base_model if record else None) or _adapter_base(run_dir / "adapter")
    return _from_adapter(base, run_dir / "adapter", engine, gguf_type, label=label, version=version,
                         cache=run_dir / "gguf")


def _adapter_base(adapter: Path) -> str:
    config = adapter / "adapter_config.json"
    if not config.is_file():
        raise ProviderError(f"{adapter}: not a PEFT adapter (no adapter_config.json)")
    return json.loads(config.read_text(encoding="utf-8"))["base_model_name_or_path"]


def _from_adapter(base: str, adapter: Path, engine: Engine, gguf_type: str, *, label: str,
                  version: str | None = None, cache: Path | None = None) -> ResolvedModel:
    if not (adapter / "adapter_config.json").is_file():
        raise ProviderError(f"{adapter}: not a PEFT adapter (no adapter_config.json)")
    if engine == "transformers":
        return ResolvedModel(label=label, base=base, adapter=adapter, version=version)
    target = (cache or adapter.parent) / f"{adapter.parent.name or 'model'}-{gguf_type}.gguf"
    if not target.is_file():
        _merge_to_gguf(base, adapter, target, gguf_type)
    return ResolvedModel(label=label, gguf=target, version=version)


def _merge_to_gguf(base: str, adapter: Path, target: Path, gguf_type: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="merge-", dir=target.parent) as tmp:
        merged = merge_adapter(base, adapter, Path(tmp) / "merged")
        try:
            reference = resolve(base).gguf_path
            export_gguf(merged, target, file_type=gguf_type, reference_gguf=reference)
        except GGUFExportError as exc:
            raise ProviderError(f"{adapter}: cannot export to GGUF ({exc}); use the transformers engine") from None


def _from_registry(match: re.Match[str], engine: Engine, tracking_uri: str | None, gguf_type: str) -> ResolvedModel:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    name, alias, number = match["name"], match["alias"], match["version"]
    uri = resolve_uri(tracking_uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        version = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, number)
        run = client.get_run(version.run_id)
    except MlflowException:
        wanted = f"alias {alias!r}" if alias else f"version {number}"
        raise ProviderError(f"models:/{name}: no {wanted} in the registry at {uri}"
                            + (" (run `melancia promote`)" if alias else "")) from None
    label = f"{name} v{version.version}"
    folder = run.data.tags.get(OUTPUT_DIR_TAG)
    if folder and (Path(folder) / "adapter").is_dir():
        return _from_run_dir(Path(folder), engine, gguf_type, label=label, version=str(version.version))
    local = get_settings().paths.models / "registry" / name / f"v{version.version}"
    adapter = local / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        import mlflow.artifacts

        local.mkdir(parents=True, exist_ok=True)
        mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=str(local), tracking_uri=uri)
    base = run.data.params.get("base_model") or _adapter_base(adapter)
    return _from_adapter(base, adapter, engine, gguf_type, label=label, version=str(version.version), cache=local)
