"""Detection of calculation questions in Portuguese: what is answered exactly and what is left to the model."""

import pytest

from melancia.calculator.detector import answer_calculations, detect_calculation


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
    # several metrics at once (see answer_calculations)
    "Magalu Ads: R$ 270 gastos, 300 cliques, 9 vendas e R$ 1.800 faturados. Qual CPC, conversão, CPA e ACOS?",
]


@pytest.mark.parametrize("question", NOT_DETECTED, ids=[q[:60] or "empty" for q in NOT_DETECTED])
def test_returns_none_when_not_a_calculation(question):
    assert detect_calculation(question) is None


def test_answer_calculations_computes_every_metric_asked():
    results = answer_calculations("Minha campanha na Amazon teve 20.000 impressões, 300 cliques, R$ 390 de gasto e "
                                  "15 pedidos. Como estão CTR, CPC, conversão e CPA?")
    assert [(c.metric, c.formatted) for c in results] == [
        ("ctr", "1,50%"), ("cpc", "R$ 1,30"), ("cvr", "5,00%"), ("cpa", "R$ 26,00")]
    results = answer_calculations("Receita total de R$ 48.500, sendo R$ 15.200 vindos de ads, e investimento de "
                                  "R$ 3.040. Calcule ACOS e TACOS.")
    assert [(c.metric, c.formatted) for c in results] == [("acos", "20,00%"), ("tacos", "6,27%")]
    results = answer_calculations("Qual o ACOS e o TACOS? Gastei R$ 200 em anúncios, vendi R$ 1.000 com anúncios "
                                  "e R$ 4.000 no total")
    assert [(c.metric, c.formatted) for c in results] == [("acos", "20,00%"), ("tacos", "5,00%")]
    assert answer_calculations("O que é ACOS?") == []
    # ACOS and ROAS together: the ACOS, whose answer states the ROAS
    [acos] = answer_calculations("investi R$ 500 e faturei R$ 2.500 com anúncios, qual o ROAS e o ACOS?")
    assert acos.formatted == "20,00%" and "5,00x" in acos.answer()


def test_a_question_about_several_metrics_is_answered_whole_or_left_to_the_model():
    # the CPC needs clicks the question does not give: answering the ACOS alone would read as complete
    assert answer_calculations("qual o acos e o cpc? gastei R$ 100 e vendi R$ 400") == []
    assert answer_calculations("qual o acos e o tacos? gastei R$ 100 e vendi R$ 400") == []


def test_long_texts_and_non_text_are_left_to_the_model():
    report = "Campanha 1: gastei R$ 200 e vendi R$ 1.000. " * 50 + "Qual o ACOS?"
    assert detect_calculation(report) is None
    assert answer_calculations(report) == []
    assert detect_calculation(None) is None  # type: ignore[arg-type]
    assert detect_calculation("   ") is None
