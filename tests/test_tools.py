"""Exact retail-media calculations, Brazilian number formats and detection of calculation questions."""

import json

import pytest

from melancia.tools import (
    METRICS,
    Calculation,
    CalculationError,
    compute,
    detect_calculation,
    detect_calculations,
    format_brl,
    format_number,
    format_percent,
    parse_number,
)

# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("1.234,56", 1234.56),
    ("1234.56", 1234.56),
    ("1234,56", 1234.56),
    ("1.000", 1000.0),
    ("1.234.567", 1234567.0),
    ("1,234,567.89", 1234567.89),
    ("0.500", 0.5),
    ("R$ 1.000", 1000.0),
    ("R$1.234,56", 1234.56),
    ("r$ 350,50", 350.5),
    ("12,5%", 12.5),
    ("12,5 %", 12.5),
    ("30 por cento", 30.0),
    ("2 mil", 2000.0),
    ("1,5 mil", 1500.0),
    ("1 milhão", 1_000_000.0),
    ("1,2 milhões", 1_200_000.0),
    ("R$ 2 mi", 2_000_000.0),
    ("R$1k", 1000.0),
    ("2,5k", 2500.0),
    ("50 mil reais", 50000.0),
    ("5x", 5.0),
    ("-R$ 10,00", -10.0),
    ("  42  ", 42.0),
])
def test_parse_number_reads_brazilian_and_plain_forms(text, expected):
    assert parse_number(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "abc", "R$", "1.2.3,4,5", "12,34.56,7", "1.23.456", "dez reais", "1 2"])
def test_parse_number_rejects_garbage(text):
    with pytest.raises(ValueError):
        parse_number(text)


@pytest.mark.parametrize(("value", "expected"), [
    (1234.56, "R$ 1.234,56"),
    (0.5, "R$ 0,50"),
    (1_000_000, "R$ 1.000.000,00"),
    (-10, "-R$ 10,00"),
    (2.675, "R$ 2,68"),  # half up on the decimal value, not on the binary float
    (-0.001, "R$ 0,00"),
])
def test_format_brl(value, expected):
    assert format_brl(value) == expected


def test_format_number_and_percent():
    assert format_number(1234.5) == "1.234,50"
    assert format_number(1234.5, 0) == "1.235"
    assert format_number(0.125, 2) == "0,13"
    assert format_number(-1234567.891, 1) == "-1.234.567,9"
    assert format_percent(12.5) == "12,50%"
    assert format_percent(100 / 3) == "33,33%"
    assert format_percent(7.14285, 1) == "7,1%"
    with pytest.raises(ValueError):
        format_number(float("nan"))


@pytest.mark.parametrize("value", [0.0, 0.01, 1.25, 1234.56, 1_000_000.99, 999.999])
def test_brl_round_trip(value):
    assert parse_number(format_brl(value)) == round(value + 1e-9, 2)


@pytest.mark.parametrize(("text", "value"), [
    ("R$ 1.234,56", 1234.56), ("1.000,00", 1000.0), ("12,50%", 12.5), ("0,75", 0.75)])
def test_text_round_trip(text, value):
    assert parse_number(text) == value
    formatted = format_percent(value) if text.endswith("%") else format_number(value)
    assert parse_number(formatted) == value
    if text.startswith("R$"):
        assert format_brl(parse_number(text)) == text


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


# --------------------------------------------------------------------------------------------
# detect_calculation(): questions that are calculations
# --------------------------------------------------------------------------------------------

DETECTED = [
    # ACOS
    ("gastei R$ 200 e vendi R$ 1.000, qual meu ACOS?", "acos", "20,00%"),
    ("qual o acos se o investimento foi de R$ 350,50 e as vendas de R$ 2.103,00", "acos", "16,67%"),
    ("QUAL O ACOS? GASTEI R$ 300,00 E VENDI R$ 1.500,00", "acos", "20,00%"),
    ("R$ 200 de investimento e R$ 1.000 de receita, acos?", "acos", "20,00%"),
    ("R$ 250 de gasto e R$ 1.250 em vendas, qual o acos", "acos", "20,00%"),
    ("Com R$ 1.500 investidos vendi R$ 6 mil. Qual o ACOS?", "acos", "25,00%"),
    ("acos: investimento R$1k, vendas R$ 5k", "acos", "20,00%"),
    ("meu gasto foi 450 reais e as vendas atribuidas 3.000 reais, quanto da o acos", "acos", "15,00%"),
    ("vendi R$ 2.000 e gastei R$ 500 em ads, qual o acos", "acos", "25,00%"),
    ("o acos ficou quanto? investi 700, receita 2800", "acos", "25,00%"),
    ("Campanha na Shopee: custo R$ 95, vendas R$ 410. ACOS?", "acos", "23,17%"),
    ("Minha campanha no Mercado Livre gastou R$ 450 e gerou R$ 3.000 em vendas. Qual o ACOS?", "acos", "15,00%"),
    ("gastei 350 reais no mercado livre ads e vendi 2800, qual meu acos?", "acos", "12,50%"),
    ("qual o acos de 3 campanhas que gastaram R$ 300 e venderam R$ 1.500?", "acos", "20,00%"),
    ("gasto R$ 50 por dia e vendo R$ 300 por dia, qual o acos?", "acos", "16,67%"),
    ("gastei 200.50 e vendi 1000, acos?", "acos", "20,05%"),
    ("Investimento: R$ 620\nReceita dos anúncios: R$ 2.480\nQual o ACOS?", "acos", "25,00%"),
    ("gastei R$ 500 e faturei R$ 2.500, sendo que o faturamento total da loja foi R$ 10.000, qual o acos?",
     "acos", "20,00%"),
    ("meu ROAS é 4, qual o ACOS?", "acos", "25,00%"),
    ("Meu ROAS é 2,5. Qual é meu ACOS?", "acos", "40,00%"),
    ("com roas de 8 quanto fica meu acos", "acos", "12,50%"),
    ("Meu ROAS é 5x, qual o ACOS equivalente?", "acos", "20,00%"),
    # ACOS and ROAS asked together: the ACOS, whose answer also gives the ROAS
    ("amazon ads: gastei R$ 800 e vendi R$ 3.200, qual meu ACOS e ROAS?", "acos", "25,00%"),
    # ROAS
    ("Investi 1.500 reais em ads e faturei R$ 7.500,00. Qual o ROAS?", "roas", "5,00x"),
    ("qual o roas, investimento de 2 mil e receita de 9 mil", "roas", "4,50x"),
    ("retorno sobre investimento em anúncios: gastei R$ 1.000 e vendi R$ 4.500", "roas", "4,50x"),
    ("qual meu retorno sobre o investimento em ads se investi R$ 800 e faturei R$ 2.000", "roas", "2,50x"),
    ("gastei 1,5 mil e vendi 6 mil qual o roas", "roas", "4,00x"),
    ("roas de uma campanha com 1200 de gasto e 4500 de venda", "roas", "3,75x"),
    ("Investimento: R$ 1.000 | Vendas: R$ 4.000 | ROAS?", "roas", "4,00x"),
    ("ACOS de 20%, qual o ROAS?", "roas", "5,00x"),
    ("Meu ACOS está em 16%. Qual é o ROAS equivalente?", "roas", "6,25x"),
    ("meu acos e 20%, qual o roas", "roas", "5,00x"),
    ("qual roas equivale a um acos de 40%?", "roas", "2,50x"),
    ("acos 12,5%, roas?", "roas", "8,00x"),
    # TACOS
    ("meu faturamento total foi R$ 50 mil e gastei R$ 4.000 em anúncios, qual meu TACOS?", "tacos", "8,00%"),
    ("tacos: gasto 650, faturamento total da loja 13.000", "tacos", "5,00%"),
    ("Gastei R$ 2.100 em anúncios e a loja faturou R$ 35.000 no mês. Qual o TACOS?", "tacos", "6,00%"),
    ("Investi R$ 1.800 em ads, vendi R$ 7.200 pelos anúncios e R$ 24.000 no total. Qual o TACOS?", "tacos", "7,50%"),
    ("Gastei R$ 5.000 em ads no mês e faturei R$ 80.000 no total (ads + orgânico). Qual meu TACOS?", "tacos", "6,25%"),
    ("A loja faturou R$ 62.000 no mês, sendo R$ 18.600 via anúncios, com investimento de R$ 4.464. Qual o TACOS?",
     "tacos", "7,20%"),
    ("acos total: gastei R$ 2.500, faturamento total R$ 50.000", "tacos", "5,00%"),
    ("tacos com investimento de 5 mil e vendas totais de 100 mil", "tacos", "5,00%"),
    (("No trimestre gastei R$ 3.600 em anúncios, as vendas atribuídas foram R$ 18.000 e as orgânicas R$ 42.000. "
     "Qual o TACOS?"), "tacos", "6,00%"),
    # CPC
    ("paguei R$ 600 por 1.200 cliques, quanto foi o CPC?", "cpc", "R$ 0,50"),
    ("A campanha teve 3.400 cliques e custou R$ 2.890. Qual o custo por clique?", "cpc", "R$ 0,85"),
    ("cpc medio com custo de 1.037,50 e 1.250 cliques", "cpc", "R$ 0,83"),
    ("custo por clique com 500 cliques e R$ 250 de investimento", "cpc", "R$ 0,50"),
    ("cpc: 2.000 cliques, gasto de R$ 1.500", "cpc", "R$ 0,75"),
    ("quanto custou cada clique se gastei R$ 90 e tive 300 cliques?", "cpc", "R$ 0,30"),
    ("qual foi meu cpc se investi R$ 1.234,56 e tive 1.000 cliques", "cpc", "R$ 1,23"),
    # CTR
    ("tive 150 cliques em 10.000 impressões, qual o CTR", "ctr", "1,50%"),
    ("Tive 1.980 cliques em 132.000 impressões. Qual a taxa de cliques?", "ctr", "1,50%"),
    ("ctr de 75 cliques em 12500 impressoes", "ctr", "0,60%"),
    ("taxa de cliques com 25 mil impressões e 500 cliques", "ctr", "2,00%"),
    ("CTR: 1.200 cliques / 80.000 impressões", "ctr", "1,50%"),
    ("meu anúncio teve 1 milhão de impressões e 8 mil cliques, qual a ctr", "ctr", "0,80%"),
    ("20.000 impressões e 80 cliques. Minha CTR está ruim?", "ctr", "0,40%"),
    ("de 1000 visualizações tive 20 cliques qual ctr", "ctr", "2,00%"),
    # CVR
    ("de 400 cliques saíram 12 pedidos, qual a taxa de conversão?", "cvr", "3,00%"),
    ("conversao: 2.150 cliques, 97 vendas", "cvr", "4,51%"),
    ("Com 1.240 cliques e 31 pedidos, qual meu CVR?", "cvr", "2,50%"),
    ("tive 50 vendas em 2.000 cliques, qual minha conversão", "cvr", "2,50%"),
    ("cvr com 3 conversões e 150 cliques", "cvr", "2,00%"),
    ("minhas vendas foram de 30 unidades com 600 cliques, qual a conversao", "cvr", "5,00%"),
    ("Qual a taxa de conversão de uma campanha com 800 cliques e 12 pedidos? Está baixa?", "cvr", "1,50%"),
    # CPA
    ("gastei 900 reais e tive 30 vendas, qual o custo por aquisição?", "cpa", "R$ 30,00"),
    ("Investi R$ 1.560 e tive 52 pedidos pelos anúncios. Qual o CPA?", "cpa", "R$ 30,00"),
    ("cpa com gasto de 730 e 18 vendas", "cpa", "R$ 40,56"),
    ("custo por pedido com investimento de R$ 500 e 25 pedidos", "cpa", "R$ 20,00"),
    ("quanto custou cada venda se gastei R$ 600 e fiz 20 vendas", "cpa", "R$ 30,00"),
    ("investi R$ 3.000 e vieram 60 conversões, qual o cpa", "cpa", "R$ 50,00"),
    ("qual o cpa se gastei 500 e vendi 20 unidades", "cpa", "R$ 25,00"),
    ("CPC de R$ 1,20 e conversão de 8%, qual o CPA?", "cpa", "R$ 15,00"),
    # CPM
    ("CPM com 250 mil impressões e investimento de R$ 1.250", "cpm", "R$ 5,00"),
    ("cpm: 85 reais, 34 mil impressões", "cpm", "R$ 2,50"),
    ("A campanha de display custou R$ 3.300 e entregou 1,2 milhão de impressões. Qual o CPM?", "cpm", "R$ 2,75"),
    ("Gastei R$ 1.305 para 450 mil impressões. Quanto deu o CPM?", "cpm", "R$ 2,90"),
    ("custo por mil impressões: R$ 2.000 de investimento e 1,6 milhão de impressões", "cpm", "R$ 1,25"),
    ("quanto paguei de CPM se gastei R$ 450 em 150.000 exibições", "cpm", "R$ 3,00"),
    # ACOS de equilíbrio
    ("meu produto custa R$ 60 e vendo por R$ 100, qual meu acos de equilíbrio?", "break_even_acos", "40,00%"),
    ("break-even acos com margem de 25%", "break_even_acos", "25,00%"),
    ("qual o acos de equilibrio com margem de 18%", "break_even_acos", "18,00%"),
    ("Produto vendido a R$ 180 com custo total de R$ 117 (já com taxas e frete). Qual o ACOS de equilíbrio?",
     "break_even_acos", "35,00%"),
    (("Preço R$ 59,90; custo do produto R$ 22; comissão do marketplace R$ 9,60; frete R$ 12. "
     "Qual ACOS máximo sem prejuízo?"), "break_even_acos", "27,21%"),
    (("Vendo um produto por R$ 89,90 e meus custos (produto, taxas e frete) somam R$ 63,50. "
     "Qual o ACOS de equilíbrio?"), "break_even_acos", "29,37%"),
    ("break even acos produto 250 reais custo total 190", "break_even_acos", "24,00%"),
    ("vendo a R$ 80 e meu custo é R$ 56, qual o break even acos", "break_even_acos", "30,00%"),
    ("qual meu acos maximo sem prejuizo se vendo por 120 reais e o produto me custa 84 reais",
     "break_even_acos", "30,00%"),
    ("break-even ACOS: preço de venda R$ 200, lucro antes dos anúncios R$ 50", "break_even_acos", "25,00%"),
    ("produto de R$ 100 com custo de R$ 45, comissão de 14% e imposto de 8%, qual acos de equilibrio",
     "break_even_acos", "33,00%"),
    ("Meu produto me custa R$ 40 com taxas e frete, e vendo por R$ 64. Qual o break-even de ACOS?",
     "break_even_acos", "37,50%"),
]


@pytest.mark.parametrize(("question", "metric", "formatted"), DETECTED, ids=[q[:60] for q, _, _ in DETECTED])
def test_detects_calculation_questions(question, metric, formatted):
    calc = detect_calculation(question)
    assert calc is not None, question
    assert (calc.metric, calc.formatted) == (metric, formatted)
    assert calc.formatted in calc.answer() and calc.worked in calc.answer()


def test_detected_inputs_are_the_right_numbers():
    calc = detect_calculation("gastei 900 reais e tive 30 vendas, qual o custo por aquisição?")
    assert calc.inputs == {"investimento": 900.0, "pedidos": 30.0}
    assert calc.worked == "R$ 900,00 ÷ 30 = R$ 30,00"
    calc = detect_calculation("meu faturamento total foi R$ 50 mil e gastei R$ 4.000 em anúncios, qual meu TACOS?")
    assert calc.inputs == {"investimento": 4000.0, "faturamento_total": 50000.0}
    calc = detect_calculation("de 400 cliques saíram 12 pedidos, qual a taxa de conversão?")
    assert calc.inputs == {"pedidos": 12.0, "cliques": 400.0}
    calc = detect_calculation("meu produto custa R$ 60 e vendo por R$ 100, qual meu acos de equilíbrio?")
    assert calc.inputs == {"preco": 100.0, "custo": 60.0}
    calc = detect_calculation("produto de R$ 100 com custo de R$ 45, comissão de 14% e imposto de 8%, "
                              "qual acos de equilibrio")
    assert calc.inputs == {"preco": 100.0, "custo": 45.0, "comissao": 14.0, "impostos": 8.0}


def test_detection_adds_the_break_even_comparison_when_a_margin_is_given():
    calc = detect_calculation("Gastei 2.750 reais em anúncios no mês e as vendas via ads foram 9.800. "
                              "Quanto deu o ACOS? Minha margem é 30%, tá bom?")
    assert calc.formatted == "28,06%" and calc.inputs["margem"] == 30.0
    assert "abaixo do equilíbrio" in calc.answer()
    calc = detect_calculation("investi 1000 e vendi 5000 qual meu roas? margem de 15%")
    assert calc.formatted == "5,00x" and "ROAS de equilíbrio é 6,67x" in calc.answer()


def test_accents_and_case_do_not_matter():
    plain = detect_calculation("tive 150 cliques em 10.000 impressoes, qual o ctr")
    accented = detect_calculation("TIVE 150 CLIQUES EM 10.000 IMPRESSÕES, QUAL O CTR?")
    assert plain == accented and plain.formatted == "1,50%"


# --------------------------------------------------------------------------------------------
# detect_calculation(): questions that are not (or cannot be answered without guessing)
# --------------------------------------------------------------------------------------------

NOT_DETECTED = [
    # definitions and judgements
    "O que é ACOS?",
    "o que significa roas",
    "como calcular o cpc?",
    "meu ACOS está em 30%, é bom?",
    "meu roas ta em 3, ta ruim?",
    "acos de 50% é ruim?",
    "Um ROAS de 8x é sempre bom?",
    "acos de 100% quer dizer o que?",
    "meu acos ta 35% e minha margem é 25%, to perdendo dinheiro?",
    "Meu TACOS caiu de 12% para 8% em três meses. O que isso indica?",
    "meu acos de equilíbrio é 30% e meu acos é 25%, estou no lucro?",
    # numbers but no metric
    "vendi 100 unidades ontem",
    "gastei R$ 500 ontem e vendi R$ 2.000",
    "investi 900 no product ads esse mes e vendi 4500 pelos anuncios, ta bom?",
    "Orçamento de R$ 150 por dia e às 12h já gastei R$ 90. Vai durar até quando?",
    # unrelated
    "qual a melhor hora para anunciar?",
    "",
    # a metric this module does not compute
    "gastei R$ 200 e vendi R$ 1.000, qual o ROI?",
    "Ticket médio de R$ 120, conversão de 5% e ACOS alvo de 20%. Qual o CPC máximo?",
    "qual o acos alvo se minha margem é 30%?",
    "Minha margem é de 20% antes dos anúncios. Qual o ROAS mínimo para não ter prejuízo na Shopee?",
    "quero acos de 15%, qual lance coloco com ticket de R$ 100 e conversão de 10%?",
    ("gastei 6 mil, a plataforma atribui 30 mil em vendas, mas o teste mostrou so 15 mil incrementais. "
    "qual o acos real?"),
    # a needed input is missing
    "gastei R$ 200, qual meu acos?",
    "qual o cpc se tive 300 cliques?",
    "qual o ctr? tive 500 cliques",
    "qual o acos se vendi R$ 1.000?",
    "qual o tacos se gastei 500?",
    "cpm de 250 mil impressões",
    "qual o roas de 20 pedidos e 400 cliques?",
    "paguei R$ 1,20 por clique e tive 30 pedidos, qual o acos?",
    # "30 vendas" is a count of orders, not revenue
    "gastei 900 reais e tive 30 vendas, qual o acos?",
    # ambiguous: two candidates for one input, unplaced amounts, mixed periods
    "gastei R$ 200 e R$ 300 e vendi R$ 1.000, qual o acos?",
    "gastei R$ 200 e vendi R$ 1.000, e no mês seguinte gastei R$ 300 e vendi R$ 1.200. Qual o ACOS?",
    "No mês 1 investi 8 mil e vendi 100 mil no total; no mês 2 investi 10 mil e vendi 140 mil. O TACOS melhorou?",
    ("Investi R$ 4.000 numa campanha. Na janela de 7 dias ela tem R$ 10.000 em vendas atribuídas e na de 14 dias, "
    "R$ 12.000. Qual o ROAS em cada janela?"),
    "vendi 10 unidades a R$ 50 cada e gastei R$ 100, qual o acos?",
    "Gastei R$ 100 por dia durante 30 dias e vendi R$ 12.000, qual o acos?",
    # impossible numbers
    "qual o cpc com R$ 100 e 0 cliques",
    "meu produto custa R$ 120 e vendo por R$ 100, qual o acos de equilibrio?",
    # several metrics at once (see detect_calculations)
    "Magalu Ads: R$ 270 gastos, 300 cliques, 9 vendas e R$ 1.800 faturados. Qual CPC, conversão, CPA e ACOS?",
]


@pytest.mark.parametrize("question", NOT_DETECTED, ids=[q[:60] or "empty" for q in NOT_DETECTED])
def test_returns_none_when_not_a_calculation(question):
    assert detect_calculation(question) is None


def test_detect_calculations_answers_every_metric_asked():
    results = detect_calculations("Minha campanha na Amazon teve 20.000 impressões, 300 cliques, R$ 390 de gasto e "
                                  "15 pedidos. Como estão CTR, CPC, conversão e CPA?")
    assert [(c.metric, c.formatted) for c in results] == [
        ("ctr", "1,50%"), ("cpc", "R$ 1,30"), ("cvr", "5,00%"), ("cpa", "R$ 26,00")]
    results = detect_calculations("Receita total de R$ 48.500, sendo R$ 15.200 vindos de ads, e investimento de "
                                  "R$ 3.040. Calcule ACOS e TACOS.")
    assert [(c.metric, c.formatted) for c in results] == [("acos", "20,00%"), ("tacos", "6,27%")]
    assert detect_calculations("O que é ACOS?") == []
    assert detect_calculations("qual o acos e o cpc? gastei R$ 100 e vendi R$ 400")[0].formatted == "25,00%"


def test_long_texts_and_non_text_are_left_to_the_model():
    report = "Campanha 1: gastei R$ 200 e vendi R$ 1.000. " * 50 + "Qual o ACOS?"
    assert detect_calculation(report) is None
    assert detect_calculations(report) == []
    assert detect_calculation(None) is None  # type: ignore[arg-type]
    assert detect_calculation("   ") is None
