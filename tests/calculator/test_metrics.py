"""Exact metric calculations: compute(), the registry, and the answers they give."""

import json

import pytest

from melancia.calculator.formulas import CalculationError
from melancia.calculator.metrics import METRICS, Calculation, compute


# --------------------------------------------------------------------------------------------
# compute()
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("metric", "inputs", "formatted", "worked"), [
    ("acos", {"investimento": 200, "receita": 1000}, "20,00%", "R$ 200,00 ÷ R$ 1.000,00 × 100 = 20,00%"),
    ("acos", {"investimento": 1, "receita": 3}, "33,33%", "R$ 1,00 ÷ R$ 3,00 × 100 = 33,33%"),
    ("acos", {"roas": 4}, "25,00%", "100 ÷ 4 = 25,00%"),
    ("roas", {"receita": 1000, "investimento": 200}, "5,00x", "R$ 1.000,00 ÷ R$ 200,00 = 5,00x"),
    ("roas", {"acos": 16}, "6,25x", "100 ÷ 16 = 6,25x"),
    ("tacos", {"investimento": 4000, "faturamento_total": 50000}, "8,00%",
     "R$ 4.000,00 ÷ R$ 50.000,00 × 100 = 8,00%"),
    ("tacos", {"investimento": 3600, "receita": 18000, "organico": 42000}, "6,00%",
     "R$ 3.600,00 ÷ (R$ 18.000,00 + R$ 42.000,00) × 100 = 6,00%"),
    ("cpc", {"investimento": 600, "cliques": 1200}, "R$ 0,50", "R$ 600,00 ÷ 1.200 = R$ 0,50"),
    ("ctr", {"cliques": 150, "impressoes": 10000}, "1,50%", "150 ÷ 10.000 × 100 = 1,50%"),
    ("cvr", {"pedidos": 12, "cliques": 400}, "3,00%", "12 ÷ 400 × 100 = 3,00%"),
    ("cpa", {"investimento": 900, "pedidos": 30}, "R$ 30,00", "R$ 900,00 ÷ 30 = R$ 30,00"),
    ("cpa", {"cpc": 1.2, "cvr": 8}, "R$ 15,00", "R$ 1,20 ÷ 8% = R$ 15,00"),
    ("cpm", {"investimento": 1250, "impressoes": 250000}, "R$ 5,00", "R$ 1.250,00 ÷ 250.000 × 1.000 = R$ 5,00"),
    ("break_even_acos", {"margem": 25}, "25,00%", "margem antes dos anúncios de 25% → ACOS de equilíbrio = 25,00%"),
    ("break_even_acos", {"preco": 100, "custo": 60}, "40,00%", "(R$ 100,00 − R$ 60,00) ÷ R$ 100,00 × 100 = 40,00%"),
    ("break_even_acos", {"preco": 59.9, "custo": 22, "comissao": 9.6, "frete": 12}, "27,21%",
     "(R$ 59,90 − (R$ 22,00 + R$ 9,60 + R$ 12,00)) ÷ R$ 59,90 × 100 = 27,21%"),
    ("break_even_acos", {"preco": 200, "lucro": 50}, "25,00%", "R$ 50,00 ÷ R$ 200,00 × 100 = 25,00%"),
])
def test_compute_is_exact_and_shows_the_worked_formula(metric, inputs, formatted, worked):
    calc = compute(metric, **inputs)
    assert calc.metric == metric
    assert calc.formatted == formatted
    assert calc.worked == worked
    assert calc.unit == METRICS[metric].unit
    assert set(calc.inputs) == set(inputs)


def test_compute_values_and_units():
    acos = compute("acos", investimento=200, receita=1000)
    assert (acos.value, acos.unit, acos.inputs) == (20.0, "%", {"investimento": 200.0, "receita": 1000.0})
    assert acos.formula == "ACOS = investimento ÷ receita de anúncios × 100"
    assert compute("roas", receita=1000, investimento=200).value == 5.0
    assert compute("cpc", investimento=1037.5, cliques=1250).formatted == "R$ 0,83"
    assert compute("acos", investimento=1, receita=3).value == pytest.approx(100 / 3)
    assert compute("cpm", investimento=3300, impressoes=1_200_000).formatted == "R$ 2,75"


def test_compute_accepts_aliases_accents_and_none():
    assert compute("ACOS", investimento=200, receita=1000).metric == "acos"
    assert compute("taxa de conversão", pedidos=12, cliques=400).metric == "cvr"
    assert compute("acos de equilíbrio", margem=30).metric == "break_even_acos"
    assert compute("cpm", investimento=1250, impressões=250000).formatted == "R$ 5,00"
    assert compute("break_even_acos", preço=100, custo=60).formatted == "40,00%"
    assert compute("acos", investimento=None, receita=None, roas=5).formatted == "20,00%"


def test_compute_prefers_the_main_formula_when_everything_is_given():
    calc = compute("acos", investimento=300, receita=1000, roas=4)
    assert calc.formatted == "30,00%" and "roas" not in calc.inputs


@pytest.mark.parametrize(("metric", "inputs", "message"), [
    ("cpc", {"investimento": 100, "cliques": 0}, "zero cliques"),
    ("cvr", {"pedidos": 0, "cliques": 0}, "zero cliques"),
    ("acos", {"investimento": 100, "receita": 0}, "Sem receita"),
    ("roas", {"receita": 100, "investimento": 0}, "investimento zero"),
    ("tacos", {"investimento": 100, "faturamento_total": 0}, "faturamento total zero"),
    ("ctr", {"cliques": 0, "impressoes": 0}, "zero impressões"),
    ("ctr", {"cliques": 200, "impressoes": 100}, "maior que o de impressões"),
    ("cpa", {"investimento": 100, "pedidos": 0}, "Sem pedidos"),
    ("cpm", {"investimento": 100, "impressoes": 0}, "zero impressões"),
    ("acos", {"roas": 0}, "ROAS zero"),
    ("roas", {"acos": 0}, "ACOS zero"),
    ("break_even_acos", {"preco": 100, "custo": 120}, "superam o preço"),
    ("break_even_acos", {"preco": 0, "custo": 0}, "preço de venda zero"),
    ("break_even_acos", {"margem": 120}, "100%"),
    ("break_even_acos", {"preco": 100, "lucro": 150}, "maior que o preço"),
])
def test_compute_rejects_impossible_numbers_in_portuguese(metric, inputs, message):
    with pytest.raises(CalculationError, match=message):
        compute(metric, **inputs)


def test_compute_reports_missing_inputs():
    with pytest.raises(CalculationError, match=r"preciso de investimento em anúncios e cliques; falta: cliques"):
        compute("cpc", investimento=100)
    with pytest.raises(CalculationError, match="falta: receita atribuída aos anúncios"):
        compute("acos", investimento=100)
    with pytest.raises(CalculationError, match="falta: impressões"):
        compute("ctr", cliques=10)


def test_compute_rejects_negative_unknown_and_invalid():
    with pytest.raises(CalculationError, match="não pode ser negativo"):
        compute("acos", investimento=-1, receita=100)
    with pytest.raises(CalculationError, match="Métrica desconhecida"):
        compute("roi", investimento=1)
    with pytest.raises(CalculationError, match="Entrada desconhecida"):
        compute("cpc", investimento=1, clicks=10)
    with pytest.raises(CalculationError, match="Valor inválido"):
        compute("cpc", investimento="muito", cliques=10)
    with pytest.raises(CalculationError, match="Valor inválido"):
        compute("cpc", investimento=float("inf"), cliques=10)
    assert issubclass(CalculationError, ValueError)


def test_registry_covers_the_nine_metrics():
    assert set(METRICS) == {"acos", "roas", "tacos", "cpc", "ctr", "cvr", "cpa", "cpm", "break_even_acos"}
    units = {name: spec.unit for name, spec in METRICS.items()}
    assert units == {"acos": "%", "roas": "x", "tacos": "%", "cpc": "R$", "ctr": "%", "cvr": "%", "cpa": "R$",
                     "cpm": "R$", "break_even_acos": "%"}
    for name, spec in METRICS.items():
        assert spec.name == name and spec.label and spec.inputs and spec.formula
    assert METRICS["ctr"].inputs == ("cliques", "impressoes")
    assert METRICS["cpm"].compute(investimento=85, impressoes=34000).formatted == "R$ 2,50"


# --------------------------------------------------------------------------------------------
# answer() and as_dict()
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("metric", "inputs", "reading"), [
    ("acos", {"investimento": 200, "receita": 1000}, "ROAS de 5,00x"),
    ("roas", {"receita": 1000, "investimento": 200}, "R$ 5,00 de venda para cada R$ 1,00 investido"),
    ("tacos", {"investimento": 4000, "faturamento_total": 50000}, "R$ 8,00 foram investidos em anúncios"),
    ("cpc", {"investimento": 600, "cliques": 1200}, "cada clique custou, em média, R$ 0,50"),
    ("ctr", {"cliques": 150, "impressoes": 10000}, "15 cliques a cada 1.000 impressões"),
    ("cvr", {"pedidos": 12, "cliques": 400}, "33,3 cliques por pedido"),
    ("cpa", {"investimento": 900, "pedidos": 30}, "cada pedido custou, em média, R$ 30,00"),
    ("cpm", {"investimento": 1250, "impressoes": 250000}, "cada mil exibições do anúncio custaram R$ 5,00"),
    ("break_even_acos", {"preco": 100, "custo": 60}, "Em ROAS, o equilíbrio é 2,50x"),
])
def test_answer_states_result_formula_and_reading(metric, inputs, reading):
    calc = compute(metric, **inputs)
    answer = calc.answer()
    assert answer.startswith(f"{METRICS[metric].subject} é {calc.formatted}.")
    assert calc.formula in answer and calc.worked in answer
    assert reading in answer


def test_answer_compares_with_break_even_when_margin_given():
    below = compute("acos", investimento=2750, receita=9800, margem=30).answer()
    assert "abaixo do equilíbrio" in below and "1,94 pontos percentuais" in below
    above = compute("acos", investimento=350, receita=1000, margem=25).answer()
    assert "acima do equilíbrio" in above and "prejuízo de 10 pontos percentuais" in above
    assert "exatamente no equilíbrio" in compute("acos", investimento=25, receita=100, margem=25).answer()
    roas = compute("roas", receita=5000, investimento=1000, margem=15).answer()
    assert "ROAS de equilíbrio é 6,67x" in roas and "prejuízo" in roas
    assert "lucro" in compute("roas", receita=5000, investimento=1000, margem=25).answer()


def test_answer_handles_zero_results():
    assert "não houve gasto" in compute("acos", investimento=0, receita=1000).answer()
    assert "não geraram vendas" in compute("roas", receita=0, investimento=100).answer()
    assert "qualquer gasto" in compute("break_even_acos", preco=100, custo=100).answer()
    assert "virou pedido" in compute("cvr", pedidos=1, cliques=100).answer()


def test_as_dict_is_json_friendly():
    calc = compute("cvr", pedidos=97, cliques=2150)
    data = json.loads(json.dumps(calc.as_dict()))
    assert data["metric"] == "cvr" and data["formatted"] == "4,51%" and data["unit"] == "%"
    assert data["inputs"] == {"pedidos": 97.0, "cliques": 2150.0}
    assert data["answer"] == calc.answer() and data["worked"] == "97 ÷ 2.150 × 100 = 4,51%"
    assert set(data) == {"metric", "value", "unit", "inputs", "formula", "worked", "formatted", "answer"}
    assert isinstance(calc, Calculation)
