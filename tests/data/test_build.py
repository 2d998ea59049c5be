from pathlib import Path

import pytest

from melancia.data.build import build_from_posts, build_from_qa, section_question, trim_to_budget
from melancia.data.documents import parse_document
from melancia.data.io import DataError
from melancia.data.schema import problems
from melancia.data.tokens import text_counter

FIXTURE = Path(__file__).parent / "fixture"
WORDS = lambda text: len(text.split())


def test_markdown_front_matter_sections_and_tables():
    doc = parse_document(FIXTURE / "posts" / "acos-basico.md")
    assert (doc.id, doc.title, doc.category, doc.tags) == ("acos-basico", "ACOS: o básico", "metricas", ["acos", "metricas"])
    assert [s.headings for s in doc.sections] == [[], ["Como calcular o ACOS"], ["Limites"], ["Interpretação prática"]]
    assert "Faixa | Leitura\nabaixo de 15% | eficiente" in doc.sections[3].text


def test_html_title_meta_sections_and_lists_without_scripts_or_nav():
    doc = parse_document(FIXTURE / "posts" / "roas.html")
    assert (doc.title, doc.category, doc.tags) == ("ROAS na prática", "metricas", ["roas", "retorno"])
    assert doc.sections[1].heading == "O que é um bom ROAS?"
    assert "- ROAS acima de 4: a campanha paga os próprios anúncios." in doc.sections[1].text
    assert "menu" not in doc.text and "var x" not in doc.text


def test_posts_become_examples_by_the_documented_rule(tiny_tokenizer):
    examples = build_from_posts([FIXTURE / "posts"], system_prompt="S", answer_token_budget=400,
                                min_answer_words=5, count_tokens=text_counter(tiny_tokenizer))
    by_id = {e["id"]: e for e in examples}
    assert set(by_id) == {"post-acos-basico-introducao", "post-acos-basico-como-calcular-o-acos",
                          "post-acos-basico-interpretacao-pratica", "post-roas-introducao",
                          "post-roas-o-que-e-um-bom-roas"}  # "Limites" is under 5 words
    calc = by_id["post-acos-basico-como-calcular-o-acos"]
    assert calc["messages"][1]["content"] == "Como calcular o ACOS?"
    assert by_id["post-acos-basico-introducao"]["messages"][1]["content"] == "ACOS: o básico: o que preciso saber?"
    assert calc["metadata"] == {"category": "metricas", "source": "corpus", "document": "acos-basico",
                                "heading": "Como calcular o ACOS"}
    assert all(problems(e) == [] for e in examples)
    again = build_from_posts([FIXTURE / "posts"], system_prompt="S", answer_token_budget=400,
                             min_answer_words=5, count_tokens=text_counter(tiny_tokenizer))
    assert [e["id"] for e in again] == [e["id"] for e in examples]


@pytest.mark.parametrize("heading, question", [
    ("Quando pausar?", "Quando pausar?"),
    ("Como calcular o ACOS", "Como calcular o ACOS?"),
    ("Fórmula", "Fórmula (ACOS): o que preciso saber?"),
    ("", "ACOS: o que preciso saber?"),
])
def test_section_question(heading, question):
    assert section_question(heading, "ACOS") == question


def test_trim_keeps_whole_sentences_within_budget():
    text = "Primeira frase curta. Segunda frase também curta. Terceira frase que não cabe no limite."
    assert trim_to_budget(text, 7, WORDS) == "Primeira frase curta. Segunda frase também curta."
    assert trim_to_budget(text, 100, WORDS) == text


def test_trim_drops_a_dangling_lead_in_and_keeps_line_breaks():
    text = "Resumo do ponto. Veja a lista:\n- item um longo demais\n- item dois"
    assert trim_to_budget(text, 8, WORDS) == "Resumo do ponto."
    assert trim_to_budget(text, 11, WORDS) == "Resumo do ponto. Veja a lista:\n- item um longo demais"


def test_trim_never_cuts_a_word(tiny_tokenizer):
    count = text_counter(tiny_tokenizer)
    sentence = "Investimento em anúncios dividido pela receita atribuída aos anúncios vezes cem " * 3
    trimmed = trim_to_budget(sentence, 20, count)
    assert trimmed.endswith("…") and count(trimmed) <= 20
    assert sentence.startswith(trimmed[:-1]) and sentence[len(trimmed) - 1] == " "


def test_qa_files_csv_and_jsonl(tmp_path):
    result = build_from_qa([FIXTURE / "qa"], system_prompt="S")
    ids = [e["id"] for e in result.examples]
    assert "fx-001" in ids and "fx-003" in ids and len(ids) == 5
    cpc = next(e for e in result.examples if e["messages"][1]["content"] == "O que é CPC?")
    assert cpc["metadata"] == {"category": "metricas", "source": "qa:faq", "must_include": ["CPC", "custo por clique|clique"]}
    assert cpc["messages"][0] == {"role": "system", "content": "S"}
    assert [(r.line, r.reason) for r in result.rejected] == [(4, "field 'question': expected non-empty text, got None")]
    again = build_from_qa([FIXTURE / "qa"], system_prompt="S")
    assert [e["id"] for e in again.examples] == ids  # ids are stable across builds


def test_csv_without_question_column_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("titulo,texto\na,b\n")
    with pytest.raises(DataError, match=r"bad.csv:1: CSV header must name a question column"):
        build_from_qa([path], system_prompt="S")


def test_csv_row_with_extra_values_is_rejected_not_dropped(tmp_path):
    path = tmp_path / "extra.csv"
    path.write_text("question,answer\nO que é CPM?,Custo por mil impressões,sobra\nO que é CPC?,Custo por clique\n")
    result = build_from_qa([path], system_prompt="S")
    assert len(result.examples) == 1
    assert result.rejected[0].line == 2 and "more values" in result.rejected[0].reason


def test_empty_qa_file_is_an_error(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="file is empty"):
        build_from_qa([tmp_path / "empty.csv"], system_prompt="S")


def test_unsupported_document_type(tmp_path):
    path = tmp_path / "post.docx"
    path.write_text("x")
    with pytest.raises(DataError, match="unsupported document type"):
        parse_document(path)


def test_invalid_front_matter_names_the_file(tmp_path):
    path = tmp_path / "bad.md"
    path.write_text("---\ntitle: [unclosed\n---\n\ntexto\n")
    with pytest.raises(DataError, match=r"bad.md:\d+: invalid front matter"):
        parse_document(path)
