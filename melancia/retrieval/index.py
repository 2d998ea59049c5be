"""The knowledge index: dense (ChromaDB + MiniLM) and lexical (BM25, Portuguese) retrieval, fused.

Layout of an index folder (``MELANCIA_HOME/index`` by default)::

    manifest.json        documents (content hash, chunk ids), current lexical generation, settings
    lexical-<n>/         BM25 (bm25s) over the chunks of generation n, with chunks.jsonl
    chroma/              the embedded Chroma database (absent when a Chroma server URL is used)
    .lock                held by the one writer allowed at a time

Updates are incremental: a document whose content hash is unchanged is skipped, a changed one has
its chunks replaced, a deleted one is removed. The lexical index is rebuilt into a new generation
folder and the manifest is switched atomically, so readers always see a complete index. A missing
or damaged index is reported with the command that fixes it, never with a traceback. The BM25 part
(tokenizing, generation folders, search) is :mod:`melancia.retrieval.lexical`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from melancia.data.io import atomic_write_text
from melancia.errors import MelanciaError
from melancia.retrieval import lexical
from melancia.retrieval.chunking import Chunk, chunk_file, content_hash, document_paths
from melancia.retrieval.subject import subject_document
from melancia.settings import get_settings

Mode = Literal["hybrid", "dense", "bm25"]
COLLECTION = "melancia-knowledge"
RRF_K = 10
"""Rank constant of the fusion: small, so agreement near the top of both lists counts most."""
DENSE_WEIGHT = 0.2
"""Weight of the dense ranking in the fusion (BM25 weighs 1): the packaged MiniLM is trained on English,
so on Portuguese it is the weaker signal. Both constants were chosen on data/retrieval/queries.jsonl
(README has the table)."""
MANIFEST_VERSION = 1


class IndexNotFoundError(MelanciaError, RuntimeError):
    """There is no usable index; the message names the command that builds one."""


class ChromaUnreachableError(MelanciaError, RuntimeError):
    """The Chroma server of the index did not answer in time."""


class IndexDamagedError(IndexNotFoundError):
    """Index files exist but cannot be read."""


@dataclass
class Hit:
    """One retrieved chunk, ready to be cited."""

    chunk_id: str
    doc_id: str
    title: str
    heading: str
    category: str
    source: str
    text: str
    score: float
    rank: int

    @property
    def citation(self) -> str:
        return f"{self.title} > {self.heading}" if self.heading and self.heading != self.title else self.title


@dataclass
class UpdateSummary:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    chunks: int = 0


class KnowledgeIndex:
    """Build, update and query the index in ``directory`` (dense part embedded or on a Chroma server)."""

    def __init__(self, directory: Path | None = None, *, chroma_url: str | None = None,
                 collection: str = COLLECTION, max_words: int = 160, overlap_words: int = 30,
                 dense_weight: float = DENSE_WEIGHT, rrf_k: int = RRF_K) -> None:
        self.directory = Path(directory or get_settings().paths.index)
        self.chroma_url = chroma_url
        self.collection_name = collection
        self.max_words, self.overlap_words = max_words, overlap_words
        self.dense_weight, self.rrf_k = dense_weight, rrf_k
        self._lexical: tuple[int, Any, list[Chunk]] | None = None

    # ------------------------------------------------------------------ writing

    def build(self, docs_dir: Path) -> UpdateSummary:
        """Index ``docs_dir`` from scratch."""
        with self._writer():
            self._drop_collection()
            lexical.remove_all(self.directory)
            (self.directory / "manifest.json").unlink(missing_ok=True)
            return self._update(docs_dir, manifest=self._empty_manifest())

    def update(self, docs_dir: Path) -> UpdateSummary:
        """Bring the index in line with ``docs_dir``: add new, replace changed, remove deleted documents."""
        with self._writer():
            manifest = self._read_manifest() if (self.directory / "manifest.json").exists() else self._empty_manifest()
            return self._update(docs_dir, manifest=manifest)

    def _update(self, docs_dir: Path, manifest: dict[str, Any]) -> UpdateSummary:
        docs_dir = Path(docs_dir)
        if not docs_dir.is_dir():
            raise IndexNotFoundError(f"{docs_dir}: documents folder not found")
        collection = self._collection(create=True)
        summary = UpdateSummary()
        known: dict[str, Any] = manifest["documents"]
        chunks_by_doc = self._current_chunks(manifest)
        seen = set()
        for path in document_paths(docs_dir):
            digest = content_hash(path)
            chunks = chunk_file(path, max_words=self.max_words, overlap_words=self.overlap_words)
            doc_id = chunks[0].doc_id if chunks else path.stem
            seen.add(doc_id)
            entry = known.get(doc_id)
            if entry and entry["hash"] == digest:
                summary.unchanged.append(doc_id)
                continue
            if entry:
                collection.delete(where={"doc_id": doc_id})
                summary.changed.append(doc_id)
            else:
                summary.added.append(doc_id)
            if chunks:
                collection.add(ids=[c.id for c in chunks], documents=[c.embedded_text for c in chunks],
                               metadatas=[c.metadata() for c in chunks])
            known[doc_id] = {"hash": digest, "source": str(path), "chunks": [c.id for c in chunks]}
            chunks_by_doc[doc_id] = chunks
        for doc_id in sorted(set(known) - seen):
            collection.delete(where={"doc_id": doc_id})
            del known[doc_id]
            chunks_by_doc.pop(doc_id, None)
            summary.removed.append(doc_id)
        all_chunks = [c for doc_id in sorted(chunks_by_doc) for c in chunks_by_doc[doc_id]]
        if summary.added or summary.changed or summary.removed or not manifest.get("lexical"):
            manifest["lexical"] = self._write_lexical(all_chunks, manifest.get("lexical", 0) + 1)
        manifest["chunks"] = summary.chunks = len(all_chunks)
        atomic_write_text(self.directory / "manifest.json", json.dumps(manifest, indent=1, ensure_ascii=False))
        lexical.prune_generations(self.directory, manifest["lexical"])
        self._lexical = None
        return summary

    def _empty_manifest(self) -> dict[str, Any]:
        return {"version": MANIFEST_VERSION, "embedding": "melancia-minilm", "collection": self.collection_name,
                "chroma_url": self.chroma_url, "max_words": self.max_words, "overlap_words": self.overlap_words,
                "documents": {}, "lexical": 0, "chunks": 0}

    def _current_chunks(self, manifest: dict[str, Any]) -> dict[str, list[Chunk]]:
        if not manifest.get("lexical"):
            return {}
        by_doc: dict[str, list[Chunk]] = {}
        for chunk in self._load_lexical(manifest["lexical"])[2]:
            by_doc.setdefault(chunk.doc_id, []).append(chunk)
        return by_doc

    def _write_lexical(self, chunks: list[Chunk], generation: int) -> int:
        return lexical.write_generation(self.directory, chunks, generation)

    def _writer(self) -> Any:
        from filelock import FileLock

        self.directory.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.directory / ".lock"), timeout=600)

    # ------------------------------------------------------------------ reading

    def query(self, text: str, k: int = 5, *, mode: Mode = "hybrid", category: str | None = None,
              per_document: int = 1) -> list[Hit]:
        """The ``k`` best chunks for ``text`` (optionally only from ``category``), best first.

        At most ``per_document`` chunks come from one document, so the results cite ``k`` sources
        rather than ``k`` neighbouring paragraphs of one.
        """
        manifest = self._read_manifest()
        generation, retriever, chunks = self._load_lexical(manifest["lexical"])
        by_id = {c.id: c for c in chunks}
        pool = max(50, 4 * k)
        rankings = []
        if mode in ("hybrid", "dense"):
            rankings.append(self._dense(text, pool, category))
        if mode in ("hybrid", "bm25"):
            rankings.append(lexical.search(text, pool, category, retriever, chunks))
        weights = [self.dense_weight, 1.0]
        if len(rankings) == 1:
            fused = rankings[0]
        elif per_document == 1:
            fused = fuse_by_document(rankings, weights, {c.id: c.doc_id for c in chunks}, self.rrf_k)
        else:
            fused = reciprocal_rank_fusion(rankings, weights, self.rrf_k)
        if mode == "hybrid":
            fused = _subject_first(text, fused, [c for c in chunks if category in (None, c.category)])
        hits: list[Hit] = []
        taken: dict[str, int] = {}
        for chunk_id, score in fused:
            chunk = by_id.get(chunk_id)
            if chunk is None:
                raise IndexDamagedError(f"{self.directory}: the dense and lexical parts disagree (chunk {chunk_id}); "
                                        "rebuild with `melancia index build`")
            if taken.get(chunk.doc_id, 0) >= per_document:
                continue
            taken[chunk.doc_id] = taken.get(chunk.doc_id, 0) + 1
            hits.append(Hit(chunk.id, chunk.doc_id, chunk.title, chunk.heading, chunk.category, chunk.source,
                            chunk.text, float(score), len(hits) + 1))
            if len(hits) == k:
                break
        return hits

    def _dense(self, text: str, pool: int, category: str | None) -> list[tuple[str, float]]:
        collection = self._collection(create=False)
        count = collection.count()
        if count == 0:
            return []
        found = collection.query(query_texts=[text], n_results=min(pool, count),
                                 where={"category": category} if category else None, include=["distances"])
        return [(i, 1.0 - d) for i, d in zip(found["ids"][0], found["distances"][0])]

    def stats(self) -> dict[str, Any]:
        manifest = self._read_manifest()
        categories: dict[str, int] = {}
        for chunk in self._load_lexical(manifest["lexical"])[2]:
            categories[chunk.category] = categories.get(chunk.category, 0) + 1
        return {"directory": str(self.directory), "documents": len(manifest["documents"]), "chunks": manifest["chunks"],
                "dense_chunks": self._collection(create=False).count(), "chroma": self.chroma_url or "embedded",
                "categories": dict(sorted(categories.items())), "lexical_generation": manifest["lexical"]}

    def _read_manifest(self) -> dict[str, Any]:
        path = self.directory / "manifest.json"
        if not path.exists():
            raise IndexNotFoundError(f"{self.directory}: no knowledge index here; build it with "
                                     "`melancia index build`")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            if manifest.get("version") != MANIFEST_VERSION or "documents" not in manifest:
                raise ValueError("unknown layout")
        except (ValueError, UnicodeDecodeError) as exc:
            raise IndexDamagedError(f"{path}: damaged index manifest ({exc}); rebuild with "
                                    "`melancia index build`") from None
        return manifest

    def _load_lexical(self, generation: int) -> tuple[int, Any, list[Chunk]]:
        if self._lexical is not None and self._lexical[0] == generation:
            return self._lexical
        folder = lexical.generation_folder(self.directory, generation)
        try:
            retriever, chunks = lexical.load_generation(folder)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexDamagedError(f"{folder}: damaged lexical index ({type(exc).__name__}); rebuild with "
                                    "`melancia index build`") from None
        self._lexical = (generation, retriever, chunks)
        return self._lexical

    # ------------------------------------------------------------------ Chroma

    def wait_for_server(self, timeout_s: float, *, interval_s: float = 2.0) -> None:
        """With a Chroma server URL, wait until it answers its heartbeat (a Job or init container may
        start before the Chroma pod is ready); raise ChromaUnreachableError after ``timeout_s``."""
        if not self.chroma_url:
            return
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._client().heartbeat()
                return
            except Exception as exc:  # chromadb raises httpx and its own errors for a server that is not up
                if time.monotonic() >= deadline:
                    raise ChromaUnreachableError(f"Chroma at {self.chroma_url} did not answer within "
                                                 f"{timeout_s:.0f} s: {exc}") from exc
                print(f"waiting for Chroma at {self.chroma_url}: {exc}", flush=True)
                time.sleep(interval_s)

    def _client(self) -> Any:
        import chromadb
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False)
        if self.chroma_url:
            url = urlparse(self.chroma_url)
            return chromadb.HttpClient(host=url.hostname or "localhost", port=url.port or 8000,
                                       ssl=url.scheme == "https", settings=settings)
        return chromadb.PersistentClient(path=str(self.directory / "chroma"), settings=settings)

    def _collection(self, *, create: bool) -> Any:
        from melancia.retrieval.embedding import MiniLMEmbeddingFunction

        client = self._client()
        function = MiniLMEmbeddingFunction()
        if create:
            return client.get_or_create_collection(self.collection_name, embedding_function=function,
                                                   configuration={"hnsw": {"space": "cosine"}})
        try:
            return client.get_collection(self.collection_name, embedding_function=function)
        except Exception as exc:  # chromadb raises several types for a missing or unreadable collection
            raise IndexDamagedError(f"{self.directory}: the dense index (Chroma collection {self.collection_name!r}"
                                    f") cannot be opened ({type(exc).__name__}); rebuild with "
                                    "`melancia index build`") from None

    def _drop_collection(self) -> None:
        client = self._client()
        if self.collection_name in [c.name for c in client.list_collections()]:
            client.delete_collection(self.collection_name)


def reciprocal_rank_fusion(rankings: list[list[tuple[str, float]]], weights: list[float] | None = None,
                           k: int = RRF_K) -> list[tuple[str, float]]:
    """Fuse ranked lists: each item scores sum(weight / (k + rank)); ties keep first-seen order."""
    weights = weights or [1.0] * len(rankings)
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, (item, _) in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])


def _subject_first(text: str, fused: list[tuple[str, float]], chunks: list[Chunk]) -> list[tuple[str, float]]:
    """A definition or how-to-calculate question's own document first ("O que é ACOS?" -> the ACOS
    article, which the break-even ACOS article outranks on term counts), with its best-ranked chunk, or
    its first chunk when fusion did not rank it."""
    doc = subject_document(text, {c.doc_id: c.title for c in chunks})
    if doc is None:
        return fused
    doc_of = {c.id: c.doc_id for c in chunks}
    best = next((item for item in fused if doc_of.get(item[0]) == doc), None)
    if best is None:
        best = (next(c.id for c in chunks if c.doc_id == doc), 0.0)
    top = fused[0][1] if fused else 0.0
    return [(best[0], max(top, best[1])), *(item for item in fused if item[0] != best[0])]


def fuse_by_document(rankings: list[list[tuple[str, float]]], weights: list[float], doc_of: dict[str, str],
                     k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal rank fusion over documents (each list ranked by its best chunk per document).

    Returns one chunk per document, the one that contributed most, scored by the document's fused score.
    """
    scores: dict[str, float] = {}
    best: dict[str, tuple[str, float]] = {}
    for ranking, weight in zip(rankings, weights):
        seen: list[str] = []
        for chunk_id, _ in ranking:
            doc = doc_of[chunk_id]
            if doc in seen:
                continue
            seen.append(doc)
            contribution = weight / (k + len(seen))
            scores[doc] = scores.get(doc, 0.0) + contribution
            if contribution > best.get(doc, ("", -1.0))[1]:
                best[doc] = (chunk_id, contribution)
    return [(best[doc][0], score) for doc, score in sorted(scores.items(), key=lambda pair: -pair[1])]
