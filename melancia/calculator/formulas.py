"""The arithmetic of each retail-media metric and how its result reads in Portuguese.

Each metric has one function per way of computing it (ACOS from spend and revenue, or from ROAS)
and one that explains the result to a seller. Inputs are exact Decimals; a zero denominator or an
impossible input raises :class:`CalculationError` with a message that is safe to show.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from melancia.calculator.numbers import format_brl, format_percent, format_plain, format_ratio


class CalculationError(ValueError):
    """A number is missing or impossible (e.g. zero clicks); message in Portuguese, safe to show."""
    """A number is missing or impossible (e.g. zero clicks); message in Portuguese, safe to show."""


HUNDRED = Decimal(100)
THOUSAND = Decimal(1000)

INPUT_LABELS = {
    "investimento": "investimento em anúncios",
    "receita": "receita atribuída aos anúncios",
    "faturamento_total": "faturamento total (orgânico + anúncios)",
    "organico": "receita orgânica",
    "cliques": "cliques",
    "impressoes": "impressões",
    "pedidos": "pedidos (conversões)",
    "margem": "margem antes dos anúncios (%)",
    "preco": "preço de venda",
    "custo": "custo do produto",
    "lucro": "lucro antes dos anúncios (R$)",
    "comissao": "comissão",
    "frete": "frete",
    "impostos": "impostos",
    "taxas": "taxas e tarifas",
    "embalagem": "embalagem",
    "acos": "ACOS (%)",
    "roas": "ROAS",
    "cpc": "CPC",
    "cvr": "taxa de conversão (%)",
}
COST_PARTS = ("comissao", "frete", "impostos", "taxas", "embalagem")


def divide(numerator: Decimal, denominator: Decimal, message: str) -> Decimal:
    """``numerator / denominator``, or CalculationError(message) when the denominator is zero."""
    if denominator == 0:
        raise CalculationError(message)
    return numerator / denominator


def money(values: Mapping[str, Decimal], name: str) -> str:
    return format_brl(values[name])


def count(values: Mapping[str, Decimal], name: str) -> str:
    return format_plain(values[name])


def percent_plain(value: Decimal) -> str:
    return f"{format_plain(value)}%"


# -- ACOS ---------------------------------------------------------------------------------

def acos(v: Mapping[str, Decimal]) -> Decimal:
    return divide(v["investimento"] * HUNDRED, v["receita"],
                   "Sem receita atribuída aos anúncios (R$ 0,00) o ACOS não pode ser calculado: não existe "
                   "divisão por zero. Na prática, gasto sem venda é o pior cenário.")


def acos_from_roas(v: Mapping[str, Decimal]) -> Decimal:
    return divide(HUNDRED, v["roas"], "Com ROAS zero (nenhuma venda) não existe ACOS equivalente.")


def _margin_comparison_acos(acos: Decimal, margin: Decimal) -> str:
    """Whether an ACOS is below, at or above the break-even given by the margin."""
    gap = format_plain(abs(margin - acos))
    base = f" Com margem de {percent_plain(margin)} antes dos anúncios (o seu ACOS de equilíbrio),"
    if acos < margin:
        return f"{base} a campanha está abaixo do equilíbrio e sobram {gap} pontos percentuais de lucro por venda."
    if acos > margin:
        return (f"{base} a campanha está acima do equilíbrio: cada venda via anúncio dá prejuízo de "
                f"{gap} pontos percentuais do preço.")
    return f"{base} a campanha está exatamente no equilíbrio: não sobra lucro nem há prejuízo."


def read_acos(acos: Decimal, v: Mapping[str, Decimal]) -> str:
    if acos == 0:
        text = "não houve gasto com mídia para gerar essas vendas."
    else:
        text = f"a cada R$ 100,00 vendidos pelos anúncios, {format_brl(acos)} foram gastos em mídia"
        text += "." if "roas" in v else f"; isso equivale a um ROAS de {format_ratio(HUNDRED / acos)}."
    if "margem" in v:
        text += _margin_comparison_acos(acos, v["margem"])
    return text


# -- ROAS ---------------------------------------------------------------------------------

def roas(v: Mapping[str, Decimal]) -> Decimal:
    return divide(v["receita"], v["investimento"],
                   "Com investimento zero não há ROAS: a métrica divide a receita pelo que foi investido.")


def roas_from_acos(v: Mapping[str, Decimal]) -> Decimal:
    return divide(HUNDRED, v["acos"], "Com ACOS zero (nenhum gasto) não existe ROAS equivalente.")


def read_roas(roas: Decimal, v: Mapping[str, Decimal]) -> str:
    if roas == 0:
        text = "os anúncios não geraram vendas atribuídas para o valor investido."
    else:
        text = f"{format_brl(roas)} de venda para cada R$ 1,00 investido"
        text += "." if "acos" in v else f"; isso equivale a um ACOS de {format_percent(HUNDRED / roas)}."
    margin = v.get("margem")
    if margin:
        break_even = HUNDRED / margin
        verdict = ("acima do equilíbrio, com lucro nas vendas via anúncio" if roas > break_even else
                   "abaixo do equilíbrio, com prejuízo nas vendas via anúncio" if roas < break_even else
                   "exatamente no equilíbrio")
        text += (f" Com margem de {percent_plain(margin)}, o ROAS de equilíbrio é "
                 f"{format_ratio(break_even)}: a campanha está {verdict}.")
    return text


# -- TACOS --------------------------------------------------------------------------------

def tacos(v: Mapping[str, Decimal]) -> Decimal:
    return divide(v["investimento"] * HUNDRED, v["faturamento_total"],
                   "Com faturamento total zero o TACOS não pode ser calculado.")


def tacos_from_parts(v: Mapping[str, Decimal]) -> Decimal:
    return divide(v["investimento"] * HUNDRED, v["receita"] + v["organico"],
                   "Com faturamento total zero o TACOS não pode ser calculado.")


def read_tacos(tacos: Decimal, v: Mapping[str, Decimal]) -> str:
    return (f"de cada R$ 100,00 faturados no total (orgânico + anúncios), {format_brl(tacos)} foram investidos "
            "em anúncios; acompanhe a tendência: TACOS caindo com faturamento subindo indica que os anúncios "
            "estão ajudando as vendas orgânicas.")


# -- CPC, CTR, CVR, CPA, CPM --------------------------------------------------------------

def cpc(v: Mapping[str, Decimal]) -> Decimal:
    return divide(v["investimento"], v["cliques"],
                   "Com zero cliques não dá para calcular o CPC: não existe custo por clique sem cliques.")


def ctr(v: Mapping[str, Decimal]) -> Decimal:
    if v["cliques"] > v["impressoes"]:
        raise CalculationError("O número de cliques não pode ser maior que o de impressões: confira os dados.")
    return divide(v["cliques"] * HUNDRED, v["impressoes"],
                   "Com zero impressões não dá para calcular o CTR: ninguém viu o anúncio.")


def cvr(v: Mapping[str, Decimal]) -> Decimal:
    return divide(v["pedidos"] * HUNDRED, v["cliques"],
                   "Com zero cliques não dá para calcular a taxa de conversão: ela divide os pedidos pelos cliques.")


def cpa(v: Mapping[str, Decimal]) -> Decimal:
    return divide(v["investimento"], v["pedidos"],
                   "Sem pedidos não há CPA: o investimento ainda não gerou nenhuma conversão.")


def cpa_from_rates(v: Mapping[str, Decimal]) -> Decimal:
    return divide(v["cpc"] * HUNDRED, v["cvr"],
                   "Com taxa de conversão zero não há CPA: nenhum clique virou pedido.")


def cpm(v: Mapping[str, Decimal]) -> Decimal:
    return divide(v["investimento"] * THOUSAND, v["impressoes"],
                   "Com zero impressões não dá para calcular o CPM: ele é o custo de cada mil exibições.")


def read_cvr(cvr: Decimal, v: Mapping[str, Decimal]) -> str:
    became = "virou pedido" if cvr < 2 else "viraram pedidos"
    text = f"a cada 100 cliques, {format_plain(cvr)} {became}"
    if cvr == 0:
        return text + "; revise termos de busca, preço, frete e página do produto."
    return text + f", ou seja, cerca de {format_plain(HUNDRED / cvr, 1)} cliques por pedido."


# -- ACOS de equilíbrio -------------------------------------------------------------------

def check_margin(margin: Decimal) -> Decimal:
    if margin > HUNDRED:
        raise CalculationError("A margem não pode passar de 100% do preço: confira o valor informado.")
    return margin


def _total_costs(v: Mapping[str, Decimal]) -> Decimal:
    return v["custo"] + sum((v[name] for name in COST_PARTS if name in v), Decimal(0))


def break_even_from_costs(v: Mapping[str, Decimal]) -> Decimal:
    costs = _total_costs(v)
    if v["preco"] == 0:
        raise CalculationError("Com preço de venda zero não existe ACOS de equilíbrio.")
    if costs > v["preco"]:
        raise CalculationError(
            f"Os custos ({format_brl(costs)}) superam o preço de venda ({format_brl(v['preco'])}): o produto já dá "
            "prejuízo antes dos anúncios, então não existe ACOS de equilíbrio.")
    return (v["preco"] - costs) * HUNDRED / v["preco"]


def break_even_from_profit(v: Mapping[str, Decimal]) -> Decimal:
    if v["preco"] == 0:
        raise CalculationError("Com preço de venda zero não existe ACOS de equilíbrio.")
    if v["lucro"] > v["preco"]:
        raise CalculationError("O lucro antes dos anúncios não pode ser maior que o preço de venda.")
    return v["lucro"] * HUNDRED / v["preco"]


def worked_costs(v: Mapping[str, Decimal]) -> str:
    parts = [format_brl(v["custo"])] + [format_brl(v[name]) for name in COST_PARTS if name in v]
    costs = parts[0] if len(parts) == 1 else "(" + " + ".join(parts) + ")"
    return f"({money(v, 'preco')} − {costs}) ÷ {money(v, 'preco')} × 100"


def read_break_even(value: Decimal, v: Mapping[str, Decimal]) -> str:
    if value == 0:
        return "o produto não tem margem antes dos anúncios: qualquer gasto com mídia gera prejuízo."
    return (f"esse é o ACOS máximo sem prejuízo: abaixo de {format_percent(value)} a venda via anúncio deixa "
            f"lucro, acima dá prejuízo. Em ROAS, o equilíbrio é {format_ratio(HUNDRED / value)}.")
