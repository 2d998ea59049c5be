"""Model providers behind one small interface (chat, streaming chat, token counts, health)."""

from melancia.providers.base import Completion, Provider, ProviderError

__all__ = ["Completion", "Provider", "ProviderError"]
