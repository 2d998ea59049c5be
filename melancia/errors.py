"""Errors a user can act on, reported as one clear line (CLI exit 2, Job termination message)."""

from __future__ import annotations


class TrainingSetupError(RuntimeError):
    """The requested model, method, device or resume point cannot be used; the message says why."""


def user_error_types() -> tuple[type[Exception], ...]:
    """Exception types whose message is meant for the user (no traceback needed)."""
    from melancia.api.store import StoreError
    from melancia.config import ConfigError
    from melancia.data.io import DataError
    from melancia.evaluation.promotion import PromotionError
    from melancia.models.loading import ModelNotFoundError
    from melancia.providers.base import ProviderError
    from melancia.retrieval.index import IndexNotFoundError
    from melancia.training.gguf_export import GGUFExportError

    return (ConfigError, DataError, ModelNotFoundError, TrainingSetupError, GGUFExportError, PromotionError,
            IndexNotFoundError, ProviderError, StoreError)
