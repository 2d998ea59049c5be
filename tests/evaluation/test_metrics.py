"""Each evaluation metric pinned on hand-made cases: accents, number formats, empty and identical answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rouge_score import rouge_scorer

from melancia.data import schema
from melancia.evaluation import metrics
from melancia.evaluation.metrics import (
    Embedder,
    aggregate,
    fact_coverage,
    has_facts,
    percentile,
    perplexity,
    rouge_l,
    words,
)

# --------------------------------------------------------------------------- words and ROUGE-L


def test_words_keep_accents_and_numbers_whole():
    assert words("A Análise da PROMOÇÃO: R$ 1.000,50 e 12,5% de ACOS (5x)!") == [
        "a", "análise", "da", "promoção", "r", "1.000,50", "e", "12,5", "de", "acos", "5x"]


def test_words_compose_decomposed_accents():
    assert words("ac\u0327a\u0303o") == ["ação"]


def test_default_rouge_tokenizer_breaks_accented_words_and_ours_does_not():
    default = rouge_scorer.RougeScorer(["rougeL"])
    assert default.score("análise da promoção", "an lise da promo o")["rougeL"].fmeasure == 1.0
    assert rouge_l("an lise da promo o", "análise da promoção") == pytest.approx(0.25)


def test_rouge_l_identical_answers_score_one():
    assert rouge_l("promoção ótima", "promoção ótima") == 1.0
    assert rouge_l("O ACOS é 20%.", "o acos é 20 %") == 1.0


def test_rouge_l_compares_words_exactly_so_accents_matter():
    assert rouge_l("ação", "acao") == 0.0
    assert rouge_l("ação boa", "acao boa") == pytest.approx(0.5)


def test_rouge_l_is_the_longest_common_subsequence_f_measure():
    # LCS "o acos é" = 3 words; precision 3/4, recall 3/5.
    assert rouge_l("o acos é alto", "o acos é muito baixo") == pytest.approx(2 * 0.75 * 0.6 / 1.35)


@pytest.mark.parametrize("answer, reference", [("", "o acos"), ("o acos", ""), ("", ""), ("?!", "o acos")])
def test_rouge_l_of_an_empty_text_is_zero(answer, reference):
    assert rouge_l(answer, reference) == 0.0


# --------------------------------------------------------------------------- fact coverage


def test_fact_coverage_counts_present_terms_and_lists_missing_ones_in_order():
    answer = "O ACOS é o investimento dividido pela receita."
    assert fact_coverage(answer, ["ACOS", "ROAS", "investimento|gasto", "margem"]) == (0.5, ["ROAS", "margem"])


def test_fact_coverage_without_terms_is_full_and_has_no_facts():
    assert fact_coverage("qualquer coisa", []) == (1.0, [])
    assert fact_coverage("qualquer coisa", ["", " | "]) == (1.0, [])
    assert not has_facts([]) and not has_facts(None) and not has_facts(["", "|"])
    assert has_facts(["ACOS"])


def test_fact_coverage_of_an_empty_answer_is_zero():
    assert fact_coverage("", ["ACOS", "20%"]) == (0.0, ["ACOS", "20%"])


@pytest.mark.parametrize("term, text", [
    ("Ação", "acao"),
    ("acao", "Ação"),
    ("equilíbrio", "EQUILIBRIO"),
    ("ACOS|Advertising Cost of Sale", "advertising cost of sale"),
    ("ticket médio", "o Ticket Medio subiu"),
    ("first-party", "dados first party"),
    ("negativ", "use palavras negativas"),
    ("negativ", "sem negativação"),
    ("ASIN", "escolha ASINs específicos"),
])
def test_terms_match_ignoring_case_accents_punctuation_and_inflection(term, text):
    assert fact_coverage(text, [term]) == (1.0, [])


@pytest.mark.parametrize("term, text", [
    ("ROAS", "ROASX"),
    ("ROAS", "iROAS"),
    ("ACOS", "TACOS"),
    ("CPC", "CPCM"),
    ("meta", "metade"),
    ("ticket médio", "ticket máximo"),
])
def test_terms_never_match_inside_a_longer_word(term, text):
    assert fact_coverage(text, [term]) == (0.0, [term])


@pytest.mark.parametrize("term, text", [
    ("1.000", "1000"), ("1000", "1.000"), ("1,000", "1000"), ("1.000", "1,000"),
    ("12,5", "12.5"), ("12.5", "12,5"),
    ("R$ 1.000,00", "1000"), ("1000", "R$ 1.000,00"), ("R$1000", "R$ 1.000,00"), ("R$ 1.000,00", "R$1000"),
    ("R$ 1.000,50", "US$ 1,000.50"),
    ("20%", "20 %"), ("20%", "20,0%"), ("20 %", "20%"), ("20,0%", "20.00 %"),
    ("0,25", "0.25"), ("0.25", "0,25"), ("0,250", "0,25"),
    ("1.500", "1500"), ("1,5", "1.5"), ("1.000.000", "1000000"), ("1.000.000,00", "1,000,000.00"),
    ("14.731", "14731"), ("-25%", "queda de -25%"),
])
def test_numbers_match_across_brazilian_and_english_formats(term, text):
    assert schema.term_present(term, text)
    assert fact_coverage(text, [term]) == (1.0, [])


@pytest.mark.parametrize("term, text", [
    ("1000", "10000"), ("10000", "1000"), ("2,5", "25"), ("25", "2,5"), ("2", "25"), ("20%", "120%"),
    ("1.500", "1.5"), ("1,5", "1.500"), ("1,500", "1,5"), ("20%", "20"), ("12,5", "12,55"), ("12", "12,5"),
    ("1000", "1.000,50"),
])
def test_different_numbers_do_not_match(term, text):
    assert not schema.term_present(term, text)


def test_a_separator_before_exactly_three_digits_groups_thousands_otherwise_it_is_decimal():
    assert schema.number_tokens("1.500") == ["1500"]      # Brazilian thousands
    assert schema.number_tokens("1,500") == ["1500"]      # English thousands
    assert schema.number_tokens("1.5") == ["1.5"]
    assert schema.number_tokens("1,50") == ["1.5"]
    assert schema.number_tokens("0,500") == ["0.5"]       # a leading zero is never a thousands group
    assert schema.number_tokens("3.14159") == ["3.14159"]
    assert schema.number_tokens("1.000,50") == ["1000.5"]  # both marks: the last one is decimal
    assert schema.number_tokens("1,000.50") == ["1000.5"]
    assert schema.number_tokens("1,2,3") == ["1", "2", "3"]  # no number shape: separate integers


def test_alternatives_are_split_by_bar_and_any_one_counts():
    assert fact_coverage("um CVR alto", ["taxa de conversão|CVR"]) == (1.0, [])
    assert fact_coverage("ROAS de 5x", ["5,0x|5 vezes"]) == (1.0, [])
    assert fact_coverage("nada disso", ["taxa de conversão|CVR"]) == (0.0, ["taxa de conversão|CVR"])


def test_the_data_pipeline_and_evaluation_share_one_matcher():
    term, answer = "R$ 1.000|mil", "Vendeu R$ 1.000,00 no mês."
    assert schema.term_present(term, answer) is True
    assert fact_coverage(answer, [term]) == (1.0, [])


# --------------------------------------------------------------------------- perplexity, percentile, aggregate


def test_perplexity_is_exp_of_the_negative_mean_logprob():
    assert perplexity([math.log(0.5)] * 4) == pytest.approx(2.0)
    assert perplexity([0.0, 0.0]) == 1.0
    assert perplexity([math.log(0.25), math.log(1.0)]) == pytest.approx(2.0)
    assert math.isnan(perplexity([]))
    assert perplexity([-1e6]) == math.inf


@pytest.mark.parametrize("q", [0, 10, 25, 50, 90, 95, 99, 100])
def test_percentile_interpolates_like_numpy(q):
    values = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6]
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_edge_cases():
    assert math.isnan(percentile([], 50))
    assert percentile([7.0], 95) == 7.0
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], 101)


def test_aggregate_ignores_missing_values():
    assert aggregate([1.0, None, 0.0, math.nan, 0.5]) == pytest.approx(0.5)
    assert aggregate([None, math.nan]) is None
    assert aggregate([]) is None


# --------------------------------------------------------------------------- embeddings


def test_embedder_loads_nothing_until_used_and_refuses_mismatched_lists():
    embedder = Embedder()
    assert embedder._model is None
    with pytest.raises(ValueError, match="2 answers for 1 references"):
        embedder.semantic_similarity(["a", "b"], ["a"])
    assert embedder.semantic_similarity(["", "  "], ["o acos", ""]) == [0.0, 0.0]
    assert embedder.bertscore([""], ["o acos"]) == [(0.0, 0.0, 0.0)]
    assert embedder._model is None


def test_greedy_match_on_hand_made_vectors():
    import torch

    candidate = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    reference = torch.tensor([[1.0, 0.0]])
    precision, recall, f1 = metrics.greedy_match(candidate, reference)
    assert (precision, recall) == pytest.approx((0.5, 1.0))
    assert f1 == pytest.approx(2 / 3)
    assert metrics.greedy_match(candidate[:0], reference) == (0.0, 0.0, 0.0)


REFERENCE = "O ACOS é o investimento em anúncios dividido pela receita gerada pelos anúncios."
PARAPHRASE = "ACOS significa quanto você gastou em anúncios dividido pelas vendas que esses anúncios trouxeram."
UNRELATED = "O Natal é uma festa em dezembro com presentes e ceia em família."


@pytest.fixture(scope="module")
def embedder():
    return Embedder()


@pytest.mark.integration
def test_semantic_similarity_ranks_paraphrase_above_unrelated_text(embedder):
    identical, paraphrase, unrelated, empty = embedder.semantic_similarity(
        [REFERENCE, PARAPHRASE, UNRELATED, ""], [REFERENCE] * 4)
    assert identical == pytest.approx(1.0, abs=1e-5)
    assert paraphrase > unrelated + 0.05  # an English-trained model: Portuguese margins are modest
    assert empty == 0.0
    assert embedder.semantic_similarity([PARAPHRASE], [REFERENCE]) == pytest.approx([paraphrase], abs=1e-5)


@pytest.mark.integration
def test_bertscore_ranks_paraphrase_above_unrelated_text(embedder):
    identical, paraphrase, unrelated, empty = embedder.bertscore([REFERENCE, PARAPHRASE, UNRELATED, ""],
                                                                 [REFERENCE] * 4)
    assert identical == pytest.approx((1.0, 1.0, 1.0), abs=1e-5)
    assert paraphrase[2] > unrelated[2]
    assert all(0.0 < value <= 1.0 for value in paraphrase + unrelated)
    assert empty == (0.0, 0.0, 0.0)
