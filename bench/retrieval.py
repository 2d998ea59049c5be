"""Knowledge index speed: query latency at 10k and 100k chunks, and build throughput.

Scale comes from synthetic chunks: sentences of the bundled corpus recombined at random (so BM25
sees realistic Portuguese vocabulary), with random unit vectors as their dense embeddings (the
vector search cost does not depend on where the vectors came from). Queries run through the real
path: MiniLM embeds the question, Chroma searches, BM25 scores, the fusion merges. Build throughput
is measured separately on real chunks embedded by MiniLM.

    .venv/bin/python bench/retrieval.py [--sizes 10000 100000] [--queries 50]

Prints p50/p95 per size, the ratio of p50 to the 50 ms target, and the 100k/10k slowdown.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from melancia.data.documents import parse_document
from melancia.retrieval.chunking import Chunk, chunk_file, document_paths, split_text
from melancia.retrieval.index import KnowledgeIndex

CORPUS = Path("data/corpus")
QUESTIONS = ["o que é ACOS e como calcular?", "como reduzir o CPC no Mercado Livre", "incrementalidade como medir",
             "diferença entre ROI e ROAS", "quanto investir na Black Friday", "palavras-chave negativas na Shopee"]


def synthetic_chunks(count: int, seed: int = 0) -> list[Chunk]:
    sentences = [s for p in document_paths(CORPUS) for section in parse_document(p).sections
                 for s in split_text(section.text, 25, 0)]
    categories = ["metricas", "plataformas", "otimizacao", "mensuracao", "conceitos"]
    rng = random.Random(seed)
    return [Chunk(f"syn-{i // 8}#{i % 8}.0", f"syn-{i // 8}", f"Documento {i // 8}", (f"Seção {i % 8}",),
                  rng.choice(categories), " ".join(rng.sample(sentences, 5)), "synthetic")
            for i in range(count)]


def load_synthetic(index: KnowledgeIndex, chunks: list[Chunk]) -> None:
    """Write chunks with random unit vectors straight into the index's dense and lexical parts."""
    import json

    from melancia.data.io import atomic_write_text

    collection = index._collection(create=True)
    rng = np.random.default_rng(0)
    for start in range(0, len(chunks), 4000):
        batch = chunks[start:start + 4000]
        vectors = rng.standard_normal((len(batch), 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        collection.add(ids=[c.id for c in batch], embeddings=vectors, documents=[c.embedded_text for c in batch],
                       metadatas=[c.metadata() for c in batch])
    manifest = index._empty_manifest()
    manifest["lexical"] = index._write_lexical(chunks, 1)
    manifest["chunks"] = len(chunks)
    atomic_write_text(index.directory / "manifest.json", json.dumps(manifest))


def latencies(index: KnowledgeIndex, queries: int) -> list[float]:
    index.query(QUESTIONS[0])  # warm-up: model and index loaded
    timings = []
    for i in range(queries):
        started = time.perf_counter()
        index.query(QUESTIONS[i % len(QUESTIONS)], k=5)
        timings.append(time.perf_counter() - started)
    return timings


def build_throughput(folder: Path) -> float:
    index = KnowledgeIndex(folder / "real")
    chunks = sum(len(chunk_file(p)) for p in document_paths(CORPUS))
    started = time.perf_counter()
    index.build(CORPUS)
    return chunks / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    p50s = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            index = KnowledgeIndex(Path(tmp) / f"n{size}")
            started = time.perf_counter()
            load_synthetic(index, synthetic_chunks(size))
            loaded = time.perf_counter() - started
            timings = latencies(index, args.queries)
            p50s[size] = statistics.median(timings)
            p95 = float(np.percentile(timings, 95))
            print(f"{size:>7} chunks: hybrid query p50 {1000 * p50s[size]:6.1f} ms  p95 {1000 * p95:6.1f} ms  "
                  f"(p50 / 50 ms target = {p50s[size] / 0.05:.2f}); loaded in {loaded:.0f} s", flush=True)
        if len(p50s) > 1:
            small, large = min(p50s), max(p50s)
            print(f"slowdown {large // 1000}k vs {small // 1000}k: {p50s[large] / p50s[small]:.2f}x")
        print(f"build throughput (real chunks, MiniLM embeddings): {build_throughput(Path(tmp)):.1f} chunks/s")


if __name__ == "__main__":
    main()
