"""Chunking, the offline embedding function, and the hybrid index on a small corpus (real Chroma, BM25, MiniLM)."""

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from melancia.retrieval.chunking import chunk_file, split_text
from melancia.retrieval.index import (IndexDamagedError, IndexNotFoundError, KnowledgeIndex, fuse_by_document,
                                      reciprocal_rank_fusion)

REPO = Path(__file__).resolve().parents[2]
DOCS = ["acos.md", "roas.md", "canibalizacao.md", "shopee-ads.md"]


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in DOCS:
        shutil.copy(REPO / "data/corpus" / name, folder / name)
    return folder


def test_split_text_respects_size_sentences_and_overlap():
    text = " ".join(f"Frase número {i} sobre ACOS e ROAS." for i in range(40))
    pieces = split_text(text, max_words=30, overlap_words=6)
    assert all(len(p.split()) <= 30 for p in pieces) and len(pieces) > 5
    assert all(p.endswith(".") for p in pieces)  # cut after a sentence
    assert pieces[1].split()[:6] == pieces[0].split()[-6:]  # neighbours overlap
    long_sentence = " ".join(["palavra"] * 75)
    assert [len(p.split()) for p in split_text(long_sentence, 30, 5)] == [30, 30, 25]


def test_chunks_keep_document_title_heading_and_category():
    chunks = chunk_file(REPO / "data/corpus/acos.md", max_words=80, overlap_words=10)
    assert len({c.id for c in chunks}) == len(chunks) and all(c.doc_id == "acos" for c in chunks)
    assert {c.category for c in chunks} == {"metricas"} and all(len(c.text.split()) <= 80 for c in chunks)
    with_heading = next(c for c in chunks if len(c.headings) > 0 and c.headings[-1] != c.title)
    assert with_heading.embedded_text.startswith(with_heading.title)
    assert with_heading.heading in with_heading.embedded_text.split("\n")[0]


def test_fusion_rewards_agreement_and_weights():
    dense = [("a", 0.9), ("b", 0.8), ("c", 0.7)]
    lexical = [("b", 12.0), ("d", 11.0), ("c", 3.0)]
    fused = [item for item, _ in reciprocal_rank_fusion([dense, lexical])]
    assert fused[0] == "b" and set(fused) == {"a", "b", "c", "d"}  # b is high in both lists
    assert fused.index("c") < fused.index("a")  # found by both beats first in one
    lexical_heavy = [item for item, _ in reciprocal_rank_fusion([dense, lexical], [0.1, 1.0])]
    assert lexical_heavy == ["b", "c", "d", "a"]  # the dense-only favourite drops to last


def test_document_fusion_counts_each_document_once_per_list():
    doc_of = {"a1": "A", "a2": "A", "b1": "B", "c1": "C"}
    dense = [("a1", 0.9), ("a2", 0.8), ("b1", 0.7)]
    lexical = [("b1", 9.0), ("a2", 8.0), ("c1", 1.0)]
    fused = fuse_by_document([dense, lexical], [1.0, 1.0], doc_of, k=10)
    assert [chunk for chunk, _ in fused] == ["a1", "b1", "c1"]  # A: ranks 1 and 2; B: 2 and 1 (tie, A first)
    assert fused[0][1] == pytest.approx(1 / 11 + 1 / 12)
    weighted = fuse_by_document([dense, lexical], [0.2, 1.0], doc_of, k=10)
    assert [chunk for chunk, _ in weighted][:2] == ["b1", "a2"]  # lexical leads; A is cited by its lexical chunk


def test_embedding_function_is_offline_and_rebuilt_from_its_config(monkeypatch):
    from chromadb.utils.embedding_functions import known_embedding_functions

    from melancia.retrieval.embedding import NAME, MiniLMEmbeddingFunction

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    function = MiniLMEmbeddingFunction()
    vectors = function(["O que é ACOS?", "ACOS é investimento dividido pela receita."])
    assert len(vectors) == 2 and len(vectors[0]) == 384
    assert abs(sum(float(x) ** 2 for x in vectors[0]) - 1.0) < 1e-4  # normalised
    assert known_embedding_functions[NAME] is MiniLMEmbeddingFunction
    assert MiniLMEmbeddingFunction.build_from_config(function.get_config()).get_config() == function.get_config()


def test_build_query_filter_and_incremental_update(corpus, tmp_path):
    index = KnowledgeIndex(tmp_path / "index")
    built = index.build(corpus)
    assert sorted(built.added) == ["acos", "canibalizacao", "roas", "shopee-ads"] and built.chunks > 8
    hits = index.query("o que é ACOS e como calcular", k=3)
    assert hits[0].doc_id == "acos" and [h.rank for h in hits] == [1, 2, 3]
    assert len({h.doc_id for h in hits}) == 3  # one chunk per document by default
    assert hits[0].citation.startswith(hits[0].title) and hits[0].source.endswith("acos.md")
    only_platforms = index.query("como anunciar", k=5, category="plataformas")
    assert only_platforms and {h.category for h in only_platforms} == {"plataformas"}
    assert {h.doc_id for h in index.query("roas", k=5, mode="bm25", per_document=5)} <= set(built.added)

    (corpus / "shopee-ads.md").unlink()  # delete
    changed = (corpus / "roas.md").read_text(encoding="utf-8") + "\n\n## Zebra listrada\n\nA zebra listrada " \
        "aparece aqui para provar que o texto novo foi indexado, com palavras suficientes para formar um trecho.\n"
    (corpus / "roas.md").write_text(changed, encoding="utf-8")  # change
    shutil.copy(REPO / "data/corpus/tacos.md", corpus / "tacos.md")  # add
    update = index.update(corpus)
    assert (update.added, update.changed, update.removed) == (["tacos"], ["roas"], ["shopee-ads"])
    assert sorted(update.unchanged) == ["acos", "canibalizacao"]
    assert index.query("zebra listrada", k=1)[0].doc_id == "roas"
    assert "shopee-ads" not in {h.doc_id for h in index.query("Shopee Ads", k=5, per_document=3)}
    stats = index.stats()
    assert stats["documents"] == 4 and stats["chunks"] == stats["dense_chunks"] == update.chunks
    again = index.update(corpus)
    assert not (again.added or again.changed or again.removed) and len(again.unchanged) == 4


def test_missing_and_damaged_index_name_the_command(corpus, tmp_path):
    with pytest.raises(IndexNotFoundError, match="melancia index build"):
        KnowledgeIndex(tmp_path / "none").query("acos")
    index = KnowledgeIndex(tmp_path / "index")
    index.build(corpus)
    manifest = json.loads((tmp_path / "index/manifest.json").read_text())
    shutil.rmtree(tmp_path / f"index/lexical-{manifest['lexical']}")
    with pytest.raises(IndexDamagedError, match="damaged lexical index.*melancia index build"):
        KnowledgeIndex(tmp_path / "index").query("acos")
    (tmp_path / "index/manifest.json").write_text("{not json")
    with pytest.raises(IndexDamagedError, match="damaged index manifest.*melancia index build"):
        KnowledgeIndex(tmp_path / "index").query("acos")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.integration
def test_dense_part_on_a_real_chroma_server(corpus, tmp_path):
    port = _free_port()
    chroma = Path(sys.executable).parent / "chroma"
    server = subprocess.Popen([str(chroma), "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1",
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        index = KnowledgeIndex(tmp_path / "index", chroma_url=f"http://127.0.0.1:{port}")
        index.build(corpus)
        assert not (tmp_path / "index/chroma").exists()  # nothing embedded: the server holds the vectors
        assert index.query("lojas que vendem na Shopee", k=2, mode="dense")[0].doc_id == "shopee-ads"
        assert index.stats()["chroma"] == f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_index_job_updates_and_reports_json(corpus, tmp_path, capsys):
    from melancia.jobs.index import main

    assert main(["--docs", str(corpus), "--dir", str(tmp_path / "index")]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert sorted(first["added"]) == sorted(Path(d).stem for d in DOCS) and first["chunks"] > 0
    assert main(["--docs", str(corpus), "--dir", str(tmp_path / "index")]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["unchanged"] == len(DOCS)
    assert main(["--docs", str(tmp_path / "missing"), "--dir", str(tmp_path / "index")]) == 1
    assert "documents folder not found" in capsys.readouterr().err


def test_retrieval_scores_land_in_the_evaluation_report(corpus, tmp_path):
    from melancia.evaluation.config import EvalConfig
    from melancia.evaluation.document import Document, retrieval_section
    from melancia.evaluation.render import markdown_block
    from melancia.evaluation.runner import _retrieval
    from melancia.retrieval.evaluation import score_ranking

    assert score_ranking(["roas", "acos", "acos"], ["acos", "tacos"]) == (0.5, 0.5, 2)
    assert score_ranking(["roas"], ["acos"]) == (0.0, 0.0, None)
    KnowledgeIndex().build(corpus)  # the default index in MELANCIA_HOME, as `melancia eval` reads it
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"id": "q1", "query": "o que é ACOS", "relevant": ["acos"]}\n'
                       '{"id": "q2", "query": "zebra listrada voadora", "relevant": ["tacos"]}\n', encoding="utf-8")
    result = _retrieval(EvalConfig(retrieval_queries=queries, retrieval_k=3))
    assert result["queries"] == 2 and set(result["modes"]) == {"dense", "bm25", "hybrid"}
    assert result["recall_at_k"] == 0.5 and [q["id"] for q in result["per_query"]] == ["q2"]
    doc = Document()
    retrieval_section(doc, {"retrieval": result})
    markdown = "\n".join(markdown_block(block) for block in doc.blocks)
    assert "| hybrid | 0.500 |" in markdown
