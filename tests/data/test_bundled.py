"""The bundled knowledge: sizes, front matter, and that it passes the dataset validator."""

from pathlib import Path

import pytest
import yaml

from melancia.data import schema
from melancia.data.config import DataConfig
from melancia.data.dedupe import remove_leaks
from melancia.data.documents import parse_document
from melancia.data.validate import validate_files

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "data" / "corpus"
CATEGORIES = {"metricas", "plataformas", "otimizacao", "mensuracao", "conceitos"}


def test_corpus_has_forty_articles_with_front_matter_and_length():
    articles = sorted(CORPUS.glob("*.md"))
    assert len(articles) >= 40
    for path in articles:
        text = path.read_text(encoding="utf-8")
        meta = yaml.safe_load(text.split("---")[1])
        assert {"title", "category", "tags"} <= set(meta), path
        assert meta["category"] in CATEGORIES, path
        words = len(parse_document(path).text.split())
        assert 300 <= words <= 1200, (path, words)
        assert len(parse_document(path).sections) >= 3, path


def test_corpus_covers_the_required_topics():
    ids = {p.stem for p in CORPUS.glob("*.md")}
    for topic in ("acos", "roas", "tacos", "cpc", "ctr", "taxa-de-conversao", "cpa", "cpm", "acos-de-equilibrio",
                  "roi-vs-roas", "mercado-livre-product-ads", "amazon-sponsored-products", "amazon-sponsored-brands",
                  "amazon-sponsored-display", "magalu-ads", "shopee-ads", "tipos-de-correspondencia",
                  "palavras-chave-negativas", "lances-e-leiloes", "orcamento-e-pacing", "dayparting", "curva-abc",
                  "janelas-de-atribuicao", "incrementalidade", "canibalizacao", "clean-rooms", "dados-first-party",
                  "on-site-off-site-in-store"):
        assert topic in ids


def test_curated_datasets_have_the_required_size_and_pass_schema():
    train = validate_files([REPO / "data" / "datasets" / "train"])
    heldout = validate_files([REPO / "data" / "datasets" / "eval"])
    assert train.ok and heldout.ok, [str(r) for r in train.rejected + heldout.rejected]
    assert len(train.valid) >= 300 and len(heldout.valid) >= 60
    everything = train.valid + heldout.valid
    assert sum(len(r["messages"]) > 3 for r in everything) >= 30  # multi-turn conversations
    assert sum(r["metadata"]["category"] == "calculos" for r in everything) >= 40  # worked calculations
    assert {r["messages"][0]["content"] for r in everything} == {DataConfig().system_prompt}


def test_every_must_include_term_is_in_its_reference_answer():
    for record in validate_files([REPO / "data" / "datasets"]).valid:
        for term in record["metadata"]["must_include"]:
            assert schema.term_present(term, schema.answer(record)), (record["id"], term)


def test_no_heldout_question_leaks_into_training():
    train = validate_files([REPO / "data" / "datasets" / "train"]).valid
    heldout = validate_files([REPO / "data" / "datasets" / "eval"]).valid
    kept, leaked = remove_leaks(train, heldout)
    assert leaked == [], [str(d) for d in leaked]


@pytest.mark.integration
def test_bundled_data_passes_the_validator_with_the_packaged_tokenizer():
    from melancia.data.tokens import chat_counter
    from melancia.models.loading import load_tokenizer

    counter = chat_counter(load_tokenizer("packaged:smollm2"))
    report = validate_files([REPO / "data" / "datasets"], count_tokens=counter, max_tokens=DataConfig().max_tokens)
    assert report.ok and len(report.valid) >= 360
