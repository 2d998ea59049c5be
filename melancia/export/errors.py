"""The error every exporter raises when a model cannot be exported here."""

from __future__ import annotations

from melancia.errors import MelanciaError


class GGUFExportError(MelanciaError, ValueError):
    """The model directory cannot be exported to GGUF here; the message says why and what to do."""
