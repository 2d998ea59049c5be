"""Definition and how-to-calculate questions: their type, their subject, and the document they are about."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from melancia.retrieval.index import KnowledgeIndex
from melancia.retrieval.subject import read_question, subject_document

REPO = Path(__file__).resolve().parents[2]
TITLES = {"acos": "ACOS: o que é, como calcular e como interpretar",
          "acos-de-equilibrio": "ACOS de equilíbrio (break-even ACOS): como derivar pela margem",
          "amazon-dsp": "Amazon DSP: mídia programática com dados da Amazon",
          "taxa-de-conversao": "Taxa de conversão (CVR): o que mede e como melhorar"}


@pytest.mark.parametrize(("question", "kind", "subject"), [
    ("O que é ACOS?", "definition", "acos"),
    ("o que é ACOS e como calcular?", "definition", "acos"),
    ("O que significa TACOS", "definition", "tacos"),
    ("o que quer dizer CPM nos anúncios?", "definition", "cpm"),
    ("Defina incrementalidade.", "definition", "incrementalidade"),
    ("O que é a Amazon DSP?", "definition", "amazon dsp"),
    ("Como calcular o ROAS?", "calculation", "roas"),
    ("como se calcula a taxa de conversão?", "calculation", "taxa de conversao"),
    ("Qual a fórmula do CTR?", "calculation", "ctr"),
    ("vale a pena anunciar no Magalu?", "other", None),
    ("gastei R$ 200 e vendi R$ 1.000, qual meu ACOS?", "other", None),
    ("como calcular o lance máximo pelo ACOS alvo numa campanha nova", "other", None),
])
def test_question_type_and_subject(question, kind, subject):
    read = read_question(question)
    assert (read.type, read.subject) == (kind, subject)


def test_the_subject_names_a_document_by_id_or_title():
    assert subject_document("O que é ACOS?", TITLES) == "acos"
    assert subject_document("O que é a Amazon DSP?", TITLES) == "amazon-dsp"
    assert subject_document("como se calcula a taxa de conversão?", TITLES) == "taxa-de-conversao"
    assert subject_document("O que é ACOS de equilíbrio?", TITLES) == "acos-de-equilibrio"
    assert subject_document("O que é ROAS?", TITLES) is None
    assert subject_document("por que meu ACOS subiu?", TITLES) is None


def test_a_definition_question_gets_its_own_article_first(tmp_path):
    # On term counts alone the break-even ACOS article (ACOS in its title twice) ranked first.
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("acos.md", "acos-de-equilibrio.md", "tacos.md", "roi-vs-roas.md"):
        shutil.copy(REPO / "data/corpus" / name, docs / name)
    index = KnowledgeIndex(tmp_path / "index")
    index.build(docs)
    assert index.query("O que é ACOS?", 3)[0].doc_id == "acos"
    assert index.query("o que significa TACOS", 3)[0].doc_id == "tacos"
    assert all(h.category == "mensuracao" for h in index.query("O que é ACOS?", 3, category="mensuracao"))
