"""The lexical half of the knowledge index: BM25 (bm25s) over Portuguese text folded to lowercase
without accents, stop words removed and stemmed, so "Incrementalidade" and "incrementalídade" meet. Each
rebuild is written to a new numbered generation folder (``lexical-<n>/``: the BM25 files and the chunks
as ``chunks.jsonl``) and moved into place whole, so a reader never sees a half-written one;
:mod:`melancia.retrieval.index` switches its manifest to the new generation and prunes the old ones."""

from __future__ import annotations

import json
import os
import shutil
import unicodedata
from pathlib import Path
from typing import Any

from melancia.retrieval.chunking import Chunk


def generation_folder(directory: Path, generation: int) -> Path:
    return directory / f"lexical-{generation}"


def remove_all(directory: Path) -> None:
    """Delete every lexical generation of the index in ``directory``."""
    for stale in directory.glob("lexical-*"):
        shutil.rmtree(stale, ignore_errors=True)


def write_generation(directory: Path, chunks: list[Chunk], generation: int) -> int:
    """Index ``chunks`` into generation ``generation`` (replacing a folder of that number); returns it."""
    import bm25s

    folder = generation_folder(directory, generation)
    tmp = directory / f".lexical-{generation}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    retriever = bm25s.BM25()
    if chunks:
        retriever.index(tokenize([c.embedded_text for c in chunks]), show_progress=False)
        retriever.save(str(tmp / "bm25"))
    (tmp / "chunks.jsonl").write_text("".join(json.dumps(c.to_dict(), ensure_ascii=False) + "\n" for c in chunks),
                                      encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return generation


def prune_generations(directory: Path, current: int) -> None:
    """Keep the current generation and the one before (a reader may still be opening it)."""
    for folder in directory.glob("lexical-*"):
        number = int(folder.name.split("-", 1)[1])
        if number < current - 1:
            shutil.rmtree(folder, ignore_errors=True)


def load_generation(folder: Path) -> tuple[Any, list[Chunk]]:
    """The BM25 retriever (None without chunks) and the chunks of a generation folder.

    Raises OSError, ValueError, KeyError or TypeError when its files are missing or damaged.
    """
    import bm25s

    chunks = [Chunk.from_dict(json.loads(line)) for line in
              (folder / "chunks.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    retriever = bm25s.BM25.load(str(folder / "bm25")) if chunks else None
    return retriever, chunks


def search(text: str, pool: int, category: str | None, retriever: Any,
           chunks: list[Chunk]) -> list[tuple[str, float]]:
    """Up to ``pool`` ``(chunk id, BM25 score)`` pairs for ``text``, best first, only positive scores."""
    import numpy as np

    if not chunks:
        return []
    mask = None
    if category:
        mask = np.array([c.category == category for c in chunks], dtype=np.float32)
        if not mask.any():
            return []
    tokens = tokenize([text])
    if not tokens.vocab:
        return []
    indices, scores = retriever.retrieve(tokens, k=min(pool, len(chunks)), weight_mask=mask, show_progress=False)
    return [(chunks[i].id, float(s)) for i, s in zip(indices[0], scores[0]) if s > 0]


def tokenize(texts: list[str]) -> Any:
    import bm25s
    import Stemmer
    from bm25s.stopwords import STOPWORDS_PORTUGUESE

    stopwords = sorted({_fold(w) for w in STOPWORDS_PORTUGUESE})
    return bm25s.tokenize([_fold(t) for t in texts], stopwords=stopwords, stemmer=Stemmer.Stemmer("portuguese"),
                          show_progress=False)


def _fold(text: str) -> str:
    """Lowercase without accents: "Incrementalidade", "incrementalidade" and "incrementalídade" meet."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))
