"""The Ollama ``Modelfile`` next to a GGUF: the chat template family as a Go template, stop strings, system prompt.

``ollama create NAME -f Modelfile`` then serves the GGUF with the same turns the model was trained on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from melancia.export.errors import GGUFExportError
from melancia.export.writer import write_atomically

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
    write_atomically(out_path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return out_path
