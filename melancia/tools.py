"""Exact retail-media metric calculator and a detector for calculation questions in Portuguese.

Language models get arithmetic wrong often enough to matter when a seller asks "gastei R$ 200 e
vendi R$ 1.000, qual meu ACOS?". This module answers those questions exactly:

* :func:`compute` turns named inputs into a :class:`Calculation` (ACOS, ROAS, TACOS, CPC, CTR,
  taxa de conversão, CPA, CPM and ACOS de equilíbrio) using :mod:`decimal` arithmetic, with the
  same formulas the knowledge base teaches (``data/corpus``), the worked formula written with
  Brazilian numbers and a complete answer in Portuguese;
* :func:`parse_number`, :func:`format_brl`, :func:`format_number` and :func:`format_percent`
  read and write Brazilian number formats ("R$ 1.234,56", "1,5 mil", "12,5%");
* :func:`detect_calculation` recognises a calculation question written informally (with or
  without accents, Brazilian or plain numbers, numbers before or after their words) and returns
  the exact :class:`Calculation`, or ``None`` when the question is not a calculation, lacks a
  number, or is ambiguous. It never guesses a missing input: then the model answers instead.

Detection works in four steps: numbers are read with their span and kind (money, percent,
ratio, count, time); metric names and role words ("gastei", "receita", "cliques"...) are found
in an accent-free copy of the question; metric names followed by their own value ("ROAS de 4")
are given values and the other metric names are what is asked; finally each number is paired
with the closest role word (a small cost model over the words between them) and the pairs are
resolved against the inputs of the metric asked.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

__all__ = [
    "METRICS",
    "Calculation",
    "CalculationError",
    "MetricSpec",
    "compute",
    "detect_calculation",
    "detect_calculations",
    "format_brl",
    "format_number",
    "format_percent",
    "parse_number",
]


class CalculationError(ValueError):
    """A number is missing or impossible (e.g. zero clicks); message in Portuguese, safe to show."""


# --------------------------------------------------------------------------------------------
# Numbers: parsing and Brazilian formatting
# --------------------------------------------------------------------------------------------

_MULTIPLIERS = {
    "mil": Decimal(1000), "k": Decimal(1000),
    "mi": Decimal(10) ** 6, "mm": Decimal(10) ** 6, "milhao": Decimal(10) ** 6, "milhoes": Decimal(10) ** 6,
    "bi": Decimal(10) ** 9, "bilhao": Decimal(10) ** 9, "bilhoes": Decimal(10) ** 9,
}
_MULTIPLIER_RE = r"milhoes|milhao|mil|mi|mm|k|bilhoes|bilhao|bi"
_PARSE_RE = re.compile(
    rf"(?P<neg>-)?\s*(?:r\$|\$)?\s*(?P<neg2>-)?\s*(?P<digits>\d+(?:[.,]\d+)*)"
    rf"\s*(?P<mult>{_MULTIPLIER_RE})?\s*(?:%|por\s*cento|reais|real|x)?"
)


def _strip_accents(text: str) -> str:
    """``text`` without diacritics ("impressões" -> "impressoes")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _digits_to_decimal(digits: str) -> Decimal:
    """Read "1.234,56", "1234.56", "1.000" or "12,5" (Brazilian first) as a Decimal.

    With both separators the last one is the decimal mark. With one comma it is the decimal
    mark; with one dot followed by exactly three digits it separates thousands ("1.000"),
    otherwise it is the decimal mark ("1234.56"). A repeated separator groups thousands.
    """
    dots, commas = digits.count("."), digits.count(",")
    if dots and commas:
        decimal_mark = "," if digits.rfind(",") > digits.rfind(".") else "."
        thousands = "." if decimal_mark == "," else ","
        integer, _, fraction = digits.rpartition(decimal_mark)
        if decimal_mark in integer:
            raise ValueError(f"número inválido: {digits!r}")
        return Decimal(_ungroup(integer, thousands) + "." + fraction)
    separator = "," if commas else "." if dots else ""
    if not separator:
        return Decimal(digits)
    if digits.count(separator) > 1:
        return Decimal(_ungroup(digits, separator))
    integer, fraction = digits.split(separator)
    if separator == "." and len(fraction) == 3 and integer.lstrip("0"):
        return Decimal(integer + fraction)
    return Decimal(integer + "." + fraction)


def _ungroup(integer: str, thousands: str) -> str:
    """"1.234.567" -> "1234567", checking the groups of three digits."""
    if not re.fullmatch(rf"\d{{1,3}}(?:{re.escape(thousands)}\d{{3}})*", integer):
        raise ValueError(f"separador de milhar inválido: {integer!r}")
    return integer.replace(thousands, "")


def _parse_decimal(text: str) -> Decimal:
    """:func:`parse_number` as an exact Decimal."""
    if not isinstance(text, str):
        raise TypeError(f"esperava um texto com um número, recebi {type(text).__name__}")
    cleaned = _strip_accents(text).lower().replace("\u00a0", " ").strip()
    match = _PARSE_RE.fullmatch(cleaned)
    if match is None:
        raise ValueError(f"não reconheço um número em {text!r}")
    if match["neg"] and match["neg2"]:
        raise ValueError(f"sinal repetido em {text!r}")
    value = _digits_to_decimal(match["digits"])
    if match["mult"]:
        value *= _MULTIPLIERS[match["mult"]]
    return -value if (match["neg"] or match["neg2"]) else value


def parse_number(text: str) -> float:
    """Read a number written the Brazilian or the plain way.

    Accepts "1.234,56", "1234.56", "1.000" (one thousand), "R$ 1.000", "12,5%" (12.5),
    "2 mil", "1,5 mil", "1 milhão", "R$ 2 mi", "R$1k", "5x" and "-R$ 10,00".
    Raises ValueError when the text is not one number.
    """
    return float(_parse_decimal(text))


def _to_decimal(value: float | Decimal) -> Decimal:
    """An exact Decimal for ``value``; floats go through their shortest repr (0.1 -> 0.1)."""
    if isinstance(value, bool):
        raise TypeError("um booleano não é um número")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value)) if math.isfinite(value) else Decimal("NaN")
    else:
        raise TypeError(f"esperava um número, recebi {type(value).__name__}")
    if not result.is_finite():
        raise ValueError("o número precisa ser finito")
    return result


def format_number(value: float, decimals: int = 2) -> str:
    """Brazilian number: "1.234,50" (thousands with ".", decimals with ",", rounded half up)."""
    if decimals < 0:
        raise ValueError("decimals não pode ser negativo")
    quantum = Decimal(1).scaleb(-decimals)
    rounded = _to_decimal(value).quantize(quantum, rounding=ROUND_HALF_UP)
    text = f"{abs(rounded):,.{decimals}f}".translate(str.maketrans(",.", ".,"))
    return f"-{text}" if rounded < 0 else text


def format_brl(value: float) -> str:
    """Money in reais: "R$ 1.234,56"; negative as "-R$ 10,00"."""
    text = format_number(value, 2)
    return f"-R$ {text[1:]}" if text.startswith("-") else f"R$ {text}"


def format_percent(value: float, decimals: int = 2) -> str:
    """A percentage already in percent units: 12.5 -> "12,50%"."""
    return f"{format_number(value, decimals)}%"


def _format_plain(value: float | Decimal, decimals: int = 2) -> str:
    """A number without needless decimals: 1200 -> "1.200", 2.5 -> "2,5", 1/3 -> "0,33"."""
    text = format_number(value, decimals)
    if "," in text:
        text = text.rstrip("0").rstrip(",")
    return "0" if text == "-0" else text


def _format_ratio(value: float | Decimal) -> str:
    """A ROAS value: 5 -> "5,00x"."""
    return f"{format_number(value, 2)}x"


# --------------------------------------------------------------------------------------------
# Metrics registry and exact computation
# --------------------------------------------------------------------------------------------

_HUNDRED = Decimal(100)
_THOUSAND = Decimal(1000)

_INPUT_LABELS = {
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
_COST_PARTS = ("comissao", "frete", "impostos", "taxas", "embalagem")


@dataclass(frozen=True)
class Variant:
    """One way of computing a metric: the inputs it needs and how it turns them into the value."""

    inputs: tuple[str, ...]
    formula: str
    function: Callable[[Mapping[str, Decimal]], Decimal]
    worked: Callable[[Mapping[str, Decimal]], str]
    """The left-hand side of the worked formula, numbers in Brazilian format."""
    optional: tuple[str, ...] = ()
    """Inputs used when given (cost parts of a price, or a margin to compare with)."""


@dataclass(frozen=True)
class MetricSpec:
    """A metric of the registry: key, Portuguese label, unit, ways to compute it and how to read it."""

    name: str
    label: str
    subject: str
    """How the answer names the result: "O ACOS", "A taxa de conversão (CVR)"."""
    unit: str
    variants: tuple[Variant, ...]
    reading: Callable[[Decimal, Mapping[str, Decimal]], str]

    @property
    def inputs(self) -> tuple[str, ...]:
        """Inputs of the main formula."""
        return self.variants[0].inputs

    @property
    def formula(self) -> str:
        """Text of the main formula."""
        return self.variants[0].formula

    def compute(self, **inputs: float) -> Calculation:
        """Same as :func:`compute` for this metric."""
        return compute(self.name, **inputs)


@dataclass(frozen=True)
class Calculation:
    """An exact result with everything needed to show and explain it."""

    metric: str
    value: float
    unit: str
    inputs: dict[str, float]
    formula: str
    worked: str
    formatted: str

    def answer(self) -> str:
        """A complete Portuguese answer: result, formula, worked formula and what it means."""
        spec = METRICS[self.metric]
        inputs = {k: _to_decimal(v) for k, v in self.inputs.items()}
        reading = spec.reading(_to_decimal(self.value), inputs)
        return (f"{spec.subject} é {self.formatted}.\n"
                f"Fórmula: {self.formula}\n"
                f"Cálculo: {self.worked}\n"
                f"Interpretação: {reading}")

    def as_dict(self) -> dict:
        """JSON-friendly: every field plus ``answer``."""
        return {**asdict(self), "inputs": dict(self.inputs), "answer": self.answer()}


def _divide(numerator: Decimal, denominator: Decimal, message: str) -> Decimal:
    """``numerator / denominator``, or CalculationError(message) when the denominator is zero."""
    if denominator == 0:
        raise CalculationError(message)
    return numerator / denominator


def _money(values: Mapping[str, Decimal], name: str) -> str:
    return format_brl(values[name])


def _count(values: Mapping[str, Decimal], name: str) -> str:
    return _format_plain(values[name])


def _percent_plain(value: Decimal) -> str:
    return f"{_format_plain(value)}%"


# -- ACOS ---------------------------------------------------------------------------------

def _acos(v: Mapping[str, Decimal]) -> Decimal:
    return _divide(v["investimento"] * _HUNDRED, v["receita"],
                   "Sem receita atribuída aos anúncios (R$ 0,00) o ACOS não pode ser calculado: não existe "
                   "divisão por zero. Na prática, gasto sem venda é o pior cenário.")


def _acos_from_roas(v: Mapping[str, Decimal]) -> Decimal:
    return _divide(_HUNDRED, v["roas"], "Com ROAS zero (nenhuma venda) não existe ACOS equivalente.")


def _margin_comparison_acos(acos: Decimal, margin: Decimal) -> str:
    """Whether an ACOS is below, at or above the break-even given by the margin."""
    gap = _format_plain(abs(margin - acos))
    base = f" Com margem de {_percent_plain(margin)} antes dos anúncios (o seu ACOS de equilíbrio),"
    if acos < margin:
        return f"{base} a campanha está abaixo do equilíbrio e sobram {gap} pontos percentuais de lucro por venda."
    if acos > margin:
        return (f"{base} a campanha está acima do equilíbrio: cada venda via anúncio dá prejuízo de "
                f"{gap} pontos percentuais do preço.")
    return f"{base} a campanha está exatamente no equilíbrio: não sobra lucro nem há prejuízo."


def _read_acos(acos: Decimal, v: Mapping[str, Decimal]) -> str:
    if acos == 0:
        text = "não houve gasto com mídia para gerar essas vendas."
    else:
        text = f"a cada R$ 100,00 vendidos pelos anúncios, {format_brl(acos)} foram gastos em mídia"
        text += "." if "roas" in v else f"; isso equivale a um ROAS de {_format_ratio(_HUNDRED / acos)}."
    if "margem" in v:
        text += _margin_comparison_acos(acos, v["margem"])
    return text


# -- ROAS ---------------------------------------------------------------------------------

def _roas(v: Mapping[str, Decimal]) -> Decimal:
    return _divide(v["receita"], v["investimento"],
                   "Com investimento zero não há ROAS: a métrica divide a receita pelo que foi investido.")


def _roas_from_acos(v: Mapping[str, Decimal]) -> Decimal:
    return _divide(_HUNDRED, v["acos"], "Com ACOS zero (nenhum gasto) não existe ROAS equivalente.")


def _read_roas(roas: Decimal, v: Mapping[str, Decimal]) -> str:
    if roas == 0:
        text = "os anúncios não geraram vendas atribuídas para o valor investido."
    else:
        text = f"{format_brl(roas)} de venda para cada R$ 1,00 investido"
        text += "." if "acos" in v else f"; isso equivale a um ACOS de {format_percent(_HUNDRED / roas)}."
    margin = v.get("margem")
    if margin:
        break_even = _HUNDRED / margin
        verdict = ("acima do equilíbrio, com lucro nas vendas via anúncio" if roas > break_even else
                   "abaixo do equilíbrio, com prejuízo nas vendas via anúncio" if roas < break_even else
                   "exatamente no equilíbrio")
        text += (f" Com margem de {_percent_plain(margin)}, o ROAS de equilíbrio é "
                 f"{_format_ratio(break_even)}: a campanha está {verdict}.")
    return text


# -- TACOS --------------------------------------------------------------------------------

def _tacos(v: Mapping[str, Decimal]) -> Decimal:
    return _divide(v["investimento"] * _HUNDRED, v["faturamento_total"],
                   "Com faturamento total zero o TACOS não pode ser calculado.")


def _tacos_from_parts(v: Mapping[str, Decimal]) -> Decimal:
    return _divide(v["investimento"] * _HUNDRED, v["receita"] + v["organico"],
                   "Com faturamento total zero o TACOS não pode ser calculado.")


def _read_tacos(tacos: Decimal, v: Mapping[str, Decimal]) -> str:
    return (f"de cada R$ 100,00 faturados no total (orgânico + anúncios), {format_brl(tacos)} foram investidos "
            "em anúncios; acompanhe a tendência: TACOS caindo com faturamento subindo indica que os anúncios "
            "estão ajudando as vendas orgânicas.")


# -- CPC, CTR, CVR, CPA, CPM --------------------------------------------------------------

def _cpc(v: Mapping[str, Decimal]) -> Decimal:
    return _divide(v["investimento"], v["cliques"],
                   "Com zero cliques não dá para calcular o CPC: não existe custo por clique sem cliques.")


def _ctr(v: Mapping[str, Decimal]) -> Decimal:
    if v["cliques"] > v["impressoes"]:
        raise CalculationError("O número de cliques não pode ser maior que o de impressões: confira os dados.")
    return _divide(v["cliques"] * _HUNDRED, v["impressoes"],
                   "Com zero impressões não dá para calcular o CTR: ninguém viu o anúncio.")


def _cvr(v: Mapping[str, Decimal]) -> Decimal:
    return _divide(v["pedidos"] * _HUNDRED, v["cliques"],
                   "Com zero cliques não dá para calcular a taxa de conversão: ela divide os pedidos pelos cliques.")


def _cpa(v: Mapping[str, Decimal]) -> Decimal:
    return _divide(v["investimento"], v["pedidos"],
                   "Sem pedidos não há CPA: o investimento ainda não gerou nenhuma conversão.")


def _cpa_from_rates(v: Mapping[str, Decimal]) -> Decimal:
    return _divide(v["cpc"] * _HUNDRED, v["cvr"],
                   "Com taxa de conversão zero não há CPA: nenhum clique virou pedido.")


def _cpm(v: Mapping[str, Decimal]) -> Decimal:
    return _divide(v["investimento"] * _THOUSAND, v["impressoes"],
                   "Com zero impressões não dá para calcular o CPM: ele é o custo de cada mil exibições.")


def _read_cvr(cvr: Decimal, v: Mapping[str, Decimal]) -> str:
    became = "virou pedido" if cvr < 2 else "viraram pedidos"
    text = f"a cada 100 cliques, {_format_plain(cvr)} {became}"
    if cvr == 0:
        return text + "; revise termos de busca, preço, frete e página do produto."
    return text + f", ou seja, cerca de {_format_plain(_HUNDRED / cvr, 1)} cliques por pedido."


# -- ACOS de equilíbrio -------------------------------------------------------------------

def _check_margin(margin: Decimal) -> Decimal:
    if margin > _HUNDRED:
        raise CalculationError("A margem não pode passar de 100% do preço: confira o valor informado.")
    return margin


def _total_costs(v: Mapping[str, Decimal]) -> Decimal:
    return v["custo"] + sum((v[name] for name in _COST_PARTS if name in v), Decimal(0))


def _break_even_from_costs(v: Mapping[str, Decimal]) -> Decimal:
    costs = _total_costs(v)
    if v["preco"] == 0:
        raise CalculationError("Com preço de venda zero não existe ACOS de equilíbrio.")
    if costs > v["preco"]:
        raise CalculationError(
            f"Os custos ({format_brl(costs)}) superam o preço de venda ({format_brl(v['preco'])}): o produto já dá "
            "prejuízo antes dos anúncios, então não existe ACOS de equilíbrio.")
    return (v["preco"] - costs) * _HUNDRED / v["preco"]


def _break_even_from_profit(v: Mapping[str, Decimal]) -> Decimal:
    if v["preco"] == 0:
        raise CalculationError("Com preço de venda zero não existe ACOS de equilíbrio.")
    if v["lucro"] > v["preco"]:
        raise CalculationError("O lucro antes dos anúncios não pode ser maior que o preço de venda.")
    return v["lucro"] * _HUNDRED / v["preco"]


def _worked_costs(v: Mapping[str, Decimal]) -> str:
    parts = [format_brl(v["custo"])] + [format_brl(v[name]) for name in _COST_PARTS if name in v]
    costs = parts[0] if len(parts) == 1 else "(" + " + ".join(parts) + ")"
    return f"({_money(v, 'preco')} − {costs}) ÷ {_money(v, 'preco')} × 100"


def _read_break_even(value: Decimal, v: Mapping[str, Decimal]) -> str:
    if value == 0:
        return "o produto não tem margem antes dos anúncios: qualquer gasto com mídia gera prejuízo."
    return (f"esse é o ACOS máximo sem prejuízo: abaixo de {format_percent(value)} a venda via anúncio deixa "
            f"lucro, acima dá prejuízo. Em ROAS, o equilíbrio é {_format_ratio(_HUNDRED / value)}.")


_ACOS_FORMULA = "ACOS = investimento ÷ receita de anúncios × 100"

METRICS: dict[str, MetricSpec] = {spec.name: spec for spec in (
    MetricSpec(
        "acos", "ACOS (custo de publicidade sobre vendas)", "O ACOS", "%",
        (Variant(("investimento", "receita"), _ACOS_FORMULA, _acos,
                 lambda v: f"{_money(v, 'investimento')} ÷ {_money(v, 'receita')} × 100", ("margem",)),
         Variant(("roas",), "ACOS = 100 ÷ ROAS", _acos_from_roas,
                 lambda v: f"100 ÷ {_count(v, 'roas')}", ("margem",))),
        _read_acos),
    MetricSpec(
        "roas", "ROAS (retorno sobre investimento em anúncios)", "O ROAS", "x",
        (Variant(("receita", "investimento"), "ROAS = receita de anúncios ÷ investimento", _roas,
                 lambda v: f"{_money(v, 'receita')} ÷ {_money(v, 'investimento')}", ("margem",)),
         Variant(("acos",), "ROAS = 100 ÷ ACOS (em %)", _roas_from_acos,
                 lambda v: f"100 ÷ {_count(v, 'acos')}", ("margem",))),
        _read_roas),
    MetricSpec(
        "tacos", "TACOS (ACOS total)", "O TACOS", "%",
        (Variant(("investimento", "faturamento_total"), "TACOS = investimento ÷ faturamento total × 100", _tacos,
                 lambda v: f"{_money(v, 'investimento')} ÷ {_money(v, 'faturamento_total')} × 100"),
         Variant(("investimento", "receita", "organico"),
                 "TACOS = investimento ÷ (receita de anúncios + receita orgânica) × 100", _tacos_from_parts,
                 lambda v: (f"{_money(v, 'investimento')} ÷ ({_money(v, 'receita')} + {_money(v, 'organico')})"
                            " × 100"))),
        _read_tacos),
    MetricSpec(
        "cpc", "CPC (custo por clique)", "O CPC", "R$",
        (Variant(("investimento", "cliques"), "CPC = investimento ÷ cliques", _cpc,
                 lambda v: f"{_money(v, 'investimento')} ÷ {_count(v, 'cliques')}"),),
        lambda value, v: f"cada clique custou, em média, {format_brl(value)}."),
    MetricSpec(
        "ctr", "CTR (taxa de cliques)", "O CTR", "%",
        (Variant(("cliques", "impressoes"), "CTR = cliques ÷ impressões × 100", _ctr,
                 lambda v: f"{_count(v, 'cliques')} ÷ {_count(v, 'impressoes')} × 100"),),
        lambda value, v: f"cerca de {_format_plain(value * 10)} cliques a cada 1.000 impressões."),
    MetricSpec(
        "cvr", "Taxa de conversão (CVR)", "A taxa de conversão (CVR)", "%",
        (Variant(("pedidos", "cliques"), "CVR = pedidos ÷ cliques × 100", _cvr,
                 lambda v: f"{_count(v, 'pedidos')} ÷ {_count(v, 'cliques')} × 100"),),
        _read_cvr),
    MetricSpec(
        "cpa", "CPA (custo por aquisição)", "O CPA", "R$",
        (Variant(("investimento", "pedidos"), "CPA = investimento ÷ pedidos", _cpa,
                 lambda v: f"{_money(v, 'investimento')} ÷ {_count(v, 'pedidos')}"),
         Variant(("cpc", "cvr"), "CPA = CPC ÷ taxa de conversão", _cpa_from_rates,
                 lambda v: f"{_money(v, 'cpc')} ÷ {_percent_plain(v['cvr'])}")),
        lambda value, v: (f"cada pedido custou, em média, {format_brl(value)} em anúncios; compare com o lucro "
                          "por pedido antes dos anúncios (o CPA máximo).")),
    MetricSpec(
        "cpm", "CPM (custo por mil impressões)", "O CPM", "R$",
        (Variant(("investimento", "impressoes"), "CPM = investimento ÷ impressões × 1.000", _cpm,
                 lambda v: f"{_money(v, 'investimento')} ÷ {_count(v, 'impressoes')} × 1.000"),),
        lambda value, v: f"cada mil exibições do anúncio custaram {format_brl(value)}."),
    MetricSpec(
        "break_even_acos", "ACOS de equilíbrio (break-even ACOS)", "O ACOS de equilíbrio", "%",
        (Variant(("preco", "custo"), "ACOS de equilíbrio = (preço − custos) ÷ preço × 100",
                 _break_even_from_costs, _worked_costs, _COST_PARTS),
         Variant(("preco", "lucro"), "ACOS de equilíbrio = lucro antes dos anúncios ÷ preço × 100",
                 _break_even_from_profit, lambda v: f"{_money(v, 'lucro')} ÷ {_money(v, 'preco')} × 100"),
         Variant(("margem",), "ACOS de equilíbrio = margem de lucro antes dos anúncios (% do preço)",
                 lambda v: _check_margin(v["margem"]),
                 lambda v: f"margem antes dos anúncios de {_percent_plain(v['margem'])} → ACOS de equilíbrio")),
        _read_break_even),
)}

_METRIC_ALIASES = {
    "taxa de conversao": "cvr", "conversao": "cvr", "taxa_de_conversao": "cvr",
    "acos de equilibrio": "break_even_acos", "acos_de_equilibrio": "break_even_acos",
    "break-even acos": "break_even_acos", "break even acos": "break_even_acos", "break_even": "break_even_acos",
    "taxa de cliques": "ctr", "custo por clique": "cpc", "custo por aquisicao": "cpa", "custo por mil": "cpm",
}


def _spec_for(metric: str) -> MetricSpec:
    """The registry entry for ``metric`` (key, label-like alias, any case or accents)."""
    key = _strip_accents(str(metric)).lower().strip()
    key = _METRIC_ALIASES.get(key, key)
    if key not in METRICS:
        known = ", ".join(METRICS)
        raise CalculationError(f"Métrica desconhecida: {metric!r}. Métricas disponíveis: {known}.")
    return METRICS[key]


def _clean_inputs(spec: MetricSpec, inputs: Mapping[str, object]) -> dict[str, Decimal]:
    """Inputs as exact non-negative Decimals, names without accents; None means not given."""
    accepted = {name for variant in spec.variants for name in (*variant.inputs, *variant.optional)}
    values: dict[str, Decimal] = {}
    for raw_name, raw_value in inputs.items():
        name = _strip_accents(raw_name).lower()
        if name not in accepted:
            raise CalculationError(f"Entrada desconhecida para {spec.label}: {raw_name!r}. "
                                   f"Entradas aceitas: {', '.join(sorted(accepted))}.")
        if raw_value is None:
            continue
        try:
            value = _to_decimal(raw_value)  # type: ignore[arg-type]
        except (TypeError, ValueError, InvalidOperation) as exc:
            raise CalculationError(f"Valor inválido para {_INPUT_LABELS.get(name, name)}: {raw_value!r}.") from exc
        if value < 0:
            raise CalculationError(f"O valor de {_INPUT_LABELS.get(name, name)} não pode ser negativo "
                                   f"({_format_plain(value)}).")
        values[name] = value
    if "margem" in values:
        _check_margin(values["margem"])
    return values


def _pick_variant(spec: MetricSpec, values: Mapping[str, Decimal]) -> Variant:
    """The first way of computing ``spec`` whose inputs are all present, or a CalculationError."""
    for variant in spec.variants:
        if all(name in values for name in variant.inputs):
            return variant
    closest = min(spec.variants, key=lambda v: sum(name not in values for name in v.inputs))
    needed = " e ".join(_INPUT_LABELS[name] for name in closest.inputs)
    missing = ", ".join(_INPUT_LABELS[name] for name in closest.inputs if name not in values)
    raise CalculationError(f"Para calcular o {spec.label} preciso de {needed}; falta: {missing}.")


def _format_value(unit: str, value: Decimal) -> str:
    """The result in its unit: "20,00%", "R$ 1,25" or "5,00x"."""
    if unit == "%":
        return format_percent(value)
    if unit == "R$":
        return format_brl(value)
    return _format_ratio(value)


def compute(metric: str, **inputs: float) -> Calculation:
    """Compute ``metric`` exactly from named inputs.

    Inputs (non-negative numbers, percentages in percent units): ``investimento``, ``receita``,
    ``faturamento_total``, ``organico``, ``cliques``, ``impressoes``, ``pedidos``, ``margem``,
    ``preco``, ``custo``, ``lucro``, cost parts ``comissao``/``frete``/``impostos``/``taxas``/
    ``embalagem`` (R$), and the given metrics ``roas`` (for ACOS), ``acos`` (for ROAS),
    ``cpc`` and ``cvr`` (for CPA). ``margem`` with ACOS or ROAS adds the break-even comparison
    to :meth:`Calculation.answer`. Raises CalculationError for an unknown metric or input, a
    missing input, a negative number or a zero denominator.
    """
    spec = _spec_for(metric)
    values = _clean_inputs(spec, inputs)
    variant = _pick_variant(spec, values)
    result = variant.function(values)
    used = {name: values[name] for name in (*variant.inputs, *variant.optional) if name in values}
    formatted = _format_value(spec.unit, result)
    return Calculation(
        metric=spec.name,
        value=float(result),
        unit=spec.unit,
        inputs={name: float(value) for name, value in used.items()},
        formula=variant.formula,
        worked=f"{variant.worked(used)} = {formatted}",
        formatted=formatted,
    )


# --------------------------------------------------------------------------------------------
# Detection: reading a question
# --------------------------------------------------------------------------------------------

_NUMBER_RE = re.compile(
    r"(?<![\w.,$])(?:(?P<cur>r\$|\$)\s*)?(?<![\w.,])(?P<digits>\d+(?:[.,]\d+)*)"
    rf"(?:\s*(?P<mult>{_MULTIPLIER_RE})\b)?"
    r"(?:\s*(?P<pct>%|por\s*cento|porcento)|\s*(?P<ratio>x|vezes)\b|\s*(?P<brl>reais|real|contos?|pilas?)\b"
    r"|\s*(?P<time>dias?|h|hs|horas?|min|minutos?|semanas?|meses|mes|anos?)\b)?"
)
_TOKEN_RE = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


def _normalize(text: str) -> str:
    """Lower case, no accents, "é" kept apart from "e" (as "eh"), plain spaces and dashes."""
    text = text.lower().replace("\u00a0", " ")
    text = re.sub(r"(?<!\w)é(?!\w)", "eh", text)
    text = _strip_accents(text)
    return re.sub(r"[\u2010-\u2015]", "-", text)


@dataclass
class _Number:
    start: int
    end: int
    value: Decimal
    kind: str
    """"money" (R$/reais), "percent", "ratio" (5x), "time" (7 dias) or "plain"."""


@dataclass(frozen=True)
class _KeywordSpec:
    roles: tuple[str, ...]
    """Roles the word can give a number, the usual one first."""
    kind: str
    """"verb" (gastei: number after), "participle" (R$ 270 gastos: number before), "noun" (money word),
    "count" (150 cliques), "sales" (vendas: money or count) or "qualifier" (no total, via anúncios)."""
    penalty: float = 0.0


@dataclass
class _Keyword:
    """A role word found in the question."""

    start: int
    end: int
    spec: _KeywordSpec


@dataclass
class _Mention:
    start: int
    end: int
    metric: str
    qualified: bool = False
    given: _Number | None = None


def _k(roles: str, kind: str, penalty: float = 0.0) -> _KeywordSpec:
    return _KeywordSpec(tuple(roles.split()), kind, penalty)


_ADS = r"(?:anuncios?|ads|publicidade|midia|campanhas?|product ads|sponsored products)"
_KEYWORDS: list[tuple[str, _KeywordSpec]] = [
    # investment in ads
    (rf"(?:custo|gasto|gastos|investimento|despesa)s?(?: total)? (?:com|dos|das|de|em|nos|nas) {_ADS}",
     _k("investimento", "noun")),
    (r"(?:investimento|gasto|valor investido)(?: total)?", _k("investimento", "noun")),
    (r"custo(?: total)?", _k("custo investimento", "noun")),
    (r"(?:total (?:gasto|investido)|valor gasto|verba|spend|ad spend|despesa|despesas)", _k("investimento", "noun")),
    (r"gast(?:ei|ou|amos|aram|ar|ando|arei|aria|a|e)", _k("investimento", "verb")),
    (r"invest(?:i|iu|imos|iram|ir|indo|irei|e|o)|apliquei|desembolsei|coloquei|torrei|pag(?:uei|ou|amos|aram)",
     _k("investimento", "verb")),
    (r"(?:gast|invest|pag|aplicad)(?:os|as|o|a|idos|idas|ido|ida)", _k("investimento", "participle")),
    (r"investimentos|gastos", _k("investimento", "noun")),
    (rf"(?:em|nos|nas) {_ADS}", _k("investimento", "qualifier", 1.0)),
    (r"cust(?:ou|aram)", _k("investimento custo", "verb")),
    # revenue from ads
    ((rf"(?:vendas|venda|receita|faturamento)s? (?:atribuidas?|atribuidos?|com {_ADS}|dos {_ADS}|de {_ADS}"
      rf"|via {_ADS}|pel[oa]s {_ADS}|em {_ADS})"), _k("receita", "noun")),
    (r"receitas?", _k("receita", "noun")),
    (r"faturamento", _k("faturamento_total receita", "noun")),
    (r"fatur(?:ei|ou|amos|aram|ar|ando|a|o)", _k("receita faturamento_total", "verb")),
    (r"faturad[oa]s?", _k("receita faturamento_total", "participle")),
    (r"vend(?:i|eu|emos|eram|er|endo)", _k("receita pedidos", "verb")),
    (r"vendid[oa]s", _k("receita pedidos", "participle")),
    (r"ger(?:ou|ei|amos|aram|ando)|trouxe(?:ram)?|retorn(?:ou|aram)|atribui(?:u)?", _k("receita pedidos", "verb")),
    (r"gerad[oa]s?", _k("receita pedidos", "participle")),
    (r"vendas?", _k("receita pedidos", "sales")),
    (rf"(?:via|pel[oa]s?|por meio d[oa]s|vind[oa]s? d[eoa]s?|com os) {_ADS}", _k("receita", "qualifier", 0.5)),
    # total sales (organic + ads)
    (r"(?:faturamento|receita|vendas?|faturado)s? (?:total|totais|gerais|geral|global|da loja|do mes|do periodo)",
     _k("faturamento_total", "noun")),
    (r"(?:a |da |na )?loja (?:toda |inteira )?(?:faturou|vendeu|fatura|vende|faturamento)",
     _k("faturamento_total", "verb")),
    (r"(?:no |ao )?total|totais|(?:ads|anuncios) ?\+ ?organic[oa]s?|organic[oa]s? ?\+ ?(?:ads|anuncios)",
     _k("faturamento_total", "qualifier", -0.5)),
    (r"(?:vendas |receita |faturamento )?organic(?:[oa]s?|amente)", _k("organico", "noun")),
    # clicks, impressions, orders
    (r"(?:total de )?(?:cliques?|clicks?|cliks?)(?: totais)?", _k("cliques", "count")),
    (r"visitas", _k("cliques", "count", 0.5)),
    (r"(?:total de )?(?:impress(?:oes|ao)|exibic(?:oes|ao)|visualizac(?:oes|ao)|views|impressions)(?: totais)?",
     _k("impressoes", "count")),
    (r"(?:total de )?(?:pedidos?|conversoes|compras?|unidades?|orders|itens vendidos|transacoes)",
     _k("pedidos", "count")),
    # margin, price and costs
    ((r"(?:margem|margens)(?: de lucro| de contribuicao| liquida| bruta)?"
      rf"(?: antes (?:dos|das|de) {_ADS})?"), _k("margem lucro", "noun")),
    (rf"lucro(?: bruto| liquido| unitario| por venda| por unidade)?(?: antes (?:dos|das|de) {_ADS})?",
     _k("lucro margem", "noun")),
    (r"(?:preco|valor)(?: de venda| medio| final| unitario)?|ticket(?: medio)?", _k("preco", "noun")),
    (r"vend(?:o|e|emos)(?: (?:o|um|meu|esse|este|cada) (?:produto|item))? (?:a|por)|vendid[oa] (?:a|por)",
     _k("preco", "verb")),
    (r"vend(?:o|e|emos)", _k("preco receita pedidos", "verb")),
    (r"(?:produto|item)(?: de)?", _k("preco", "noun", 1.0)),
    ((r"custo(?: do produto| do item| unitario| de compra| de aquisicao do produto| de fabrica| da mercadoria)"
      r"(?: total)?|cmv|custos?(?: totais)?|somam|soma|somando|totalizam|(?:me )?custa"),
     _k("custo investimento", "noun")),
    (r"comiss(?:ao|oes)", _k("comissao", "noun")),
    (r"fretes?", _k("frete", "noun")),
    (r"impostos?", _k("impostos", "noun")),
    (r"taxas?(?: fixas?)?|tarifas?(?: fixas?)?|fees?", _k("taxas", "noun")),
    (r"embalage(?:m|ns)", _k("embalagem", "noun")),
    # words whose numbers are not inputs (they only keep their numbers away from other roles)
    ((r"orcamentos?(?: diario| mensal| por dia)?|lances?(?: base| atual)?|ajustes?|estoque|meta|alvo|objetivo"
      r"|markup|nota"), _k("ignorar", "noun")),
]
_KEYWORD_RES = [(re.compile(rf"(?<![\w$]){pattern}(?![\w])"), spec) for pattern, spec in _KEYWORDS]

_MENTIONS: list[tuple[str, str]] = [
    ("break_even_acos", (r"acos (?:de |do )?(?:equilibrio|break ?-?even|empate)|break ?-?even (?:de |do |of )?acos"
                         r"|ponto de equilibrio (?:do|de) acos|acos (?:maximo|limite)(?: aceitavel)? (?:sem|para nao"
                         r"|pra nao|antes de) (?:ter |dar )?prejuizo")),
    ("roas", (r"roas|retorno sobre (?:o )?(?:investimento|gasto|investido)s? (?:em|com|de) (?:anuncios?|ads"
              r"|publicidade|midia)|return on ad spend")),
    ("tacos", r"t-?acos|acos total|total acos"),
    ("acos", r"acos|custo de publicidade sobre (?:as )?vendas|advertising cost of sales?"),
    ("cpc", (r"cpc(?: medio)?|custo (?:medio )?por clique(?: medio)?|quanto (?:custou|saiu|sai|ficou|fica|deu"
             r"|paguei|pagou|pago|custa) (?:em media )?(?:cada|por|o) clique")),
    ("ctr", r"ctr|taxa de cliques?|click ?-?through(?: rate)?"),
    ("cvr", r"cvr|(?:taxa|tx|indice) de conversao|conversao|conversion rate"),
    ("cpa", (r"cpa|custo (?:medio )?por (?:aquisicao|pedido|venda|conversao|compra)|custo de aquisicao"
             r"|quanto (?:custou|saiu|ficou|paguei|deu) (?:cada|por) (?:pedido|venda|conversao|compra)")),
    ("cpm", r"cpm|custo (?:por|a cada) (?:mil|1000|1\.000|milhar)(?: (?:impressoes|exibicoes|visualizacoes))?"),
    ("roi", r"roi|retorno sobre (?:o )?investimento"),
]
_MENTION_RES = [(metric, re.compile(rf"(?<![\w$]){pattern}(?![\w])")) for metric, pattern in _MENTIONS]
_QUALIFIER_AFTER = re.compile(
    r"\s*(?:de\s+)?(?:alvo|objetivo|meta|maximo|max|minimo|ideal|desejado|desejavel|esperado|aceitavel|limite"
    r"|projetado|previsto)\b")
_QUALIFIER_BEFORE = re.compile(r"(?:quero|queria|desejo|meta de|alvo de|objetivo de)\s+(?:(?:um|o|de|ter)\s+)?$")
_OUT_OF_SCOPE = re.compile(r"\b(?:incrementa\w*|iroas|iacos|holdout)\b")



def _words(text: str) -> frozenset[str]:
    """The words of ``text`` (separated by spaces) as a set."""
    return frozenset(text.split())


_LINK_WORDS = _words(
    "de do da dos das em no na nos nas foi foram era eram eh esta estao ta tava estava ficou fica deu o a os "
    "as um uma uns umas meu minha meus minhas seu sua nosso nossa ja so apenas quase aproximadamente cerca "
    "mais : =")
_DE_WORDS = _words("de do da dos das em no na nos nas")
_SEPARATORS = _words("e mas porem enquanto sendo que quando se ou alem tambem")
_PUNCTUATION_COST = {",": 1.5, ";": 3.0, ".": 4.0, "?": 4.0, "!": 4.0, "(": 0.5, ")": 0.5, "[": 0.5, "]": 0.5,
                     "-": 0.5, "+": 1.0, "/": 1.0}
_GIVEN_LINKS = _words(
    "de do da eh e esta estah ta tah fica ficou foi era atual atualmente em = igual a na casa perto cerca volta "
    "hoje agora medio media por")
_QUESTION_WORDS = _words("qual quais quanto quanta quantos como entao hoje agora ontem certo bom ruim alto baixo")
_PER_PERIOD = re.compile(r"\s*(?:(?:por|ao|a|/|cada)\s*(?:dia|semana|mes|hora)\b|diari[oa]s?\b|semanais\b"
                         r"|mensais\b|por\s+m[eê]s\b)")
_MAX_COST = 3.0
_MAX_QUESTION_CHARS = 1500  # calculation questions are short; long pasted reports go to the model
_MAX_NUMBERS = 30

_ROLE_KINDS = {
    **{role: {"money", "plain"} for role in (
        "investimento", "receita", "faturamento_total", "organico", "preco", "custo", "frete", "embalagem",
        "cpc", "cpa", "cpm")},
    **{role: {"money", "plain", "percent"} for role in ("comissao", "impostos", "taxas")},
    "lucro": {"money", "plain"},
    "margem": {"percent", "plain"},
    **{role: {"plain"} for role in ("cliques", "impressoes", "pedidos")},
    **{role: {"percent", "plain"} for role in ("acos", "tacos", "ctr", "cvr", "break_even_acos")},
    "roas": {"ratio", "plain"},
    "ignorar": {"money", "plain", "percent", "ratio"},
}
_SUMMABLE = frozenset(("custo", *_COST_PARTS))
_MONEY_ROLES = frozenset(role for role, kinds in _ROLE_KINDS.items() if "money" in kinds and role != "ignorar")


def _read_numbers(text: str) -> list[_Number]:
    """Every number of the normalized question with its value and kind."""
    numbers = []
    for match in _NUMBER_RE.finditer(text):
        try:
            value = _digits_to_decimal(match["digits"])
        except (ValueError, InvalidOperation):
            continue
        if match["mult"]:
            value *= _MULTIPLIERS[match["mult"]]
        kind = ("time" if match["time"] else "percent" if match["pct"] else "ratio" if match["ratio"]
                else "money" if (match["cur"] or match["brl"]) else "plain")
        numbers.append(_Number(match.start(), match.end(), value, kind))
    return numbers


def _free(start: int, end: int, taken: list[tuple[int, int]]) -> bool:
    return all(end <= s or start >= e for s, e in taken)


def _find_mentions(text: str) -> list[_Mention]:
    """Metric names in the question (longest first, no overlaps), with their qualifiers."""
    found = []
    for metric, regex in _MENTION_RES:
        found += [(m.start(), m.end(), metric) for m in regex.finditer(text)]
    found.sort(key=lambda item: item[0] - item[1])
    taken: list[tuple[int, int]] = []
    mentions = []
    for start, end, metric in found:
        if _free(start, end, taken):
            taken.append((start, end))
            qualified = bool(_QUALIFIER_AFTER.match(text, end) or _QUALIFIER_BEFORE.search(text[:start]))
            mentions.append(_Mention(start, end, metric, qualified))
    return sorted(mentions, key=lambda m: m.start)


def _find_keywords(text: str, taken: list[tuple[int, int]]) -> list[_Keyword]:
    """Role words outside metric names and numbers (longest first, no overlaps)."""
    found = []
    for regex, spec in _KEYWORD_RES:
        found += [(m.start(), m.end(), spec) for m in regex.finditer(text)]
    found.sort(key=lambda item: item[0] - item[1])
    taken = list(taken)
    keywords = []
    for start, end, spec in found:
        if _free(start, end, taken):
            taken.append((start, end))
            keywords.append(_Keyword(start, end, spec))
    return sorted(keywords, key=lambda k: k.start)


@dataclass
class _Question:
    """A question read into numbers, role words and metric names."""

    text: str
    numbers: list[_Number]
    keywords: list[_Keyword]
    mentions: list[_Mention]
    spans: list[tuple[int, int]] = field(default_factory=list)

    def blocked(self, start: int, end: int) -> bool:
        """Whether a number, role word or metric name lies inside ``text[start:end]``."""
        return any(start <= s and e <= end for s, e in self.spans)


def _read_question(question: str) -> _Question:
    """Normalize ``question`` and find its numbers, role words and metric names."""
    text = _normalize(question)
    mentions = _find_mentions(text)
    mention_spans = [(m.start, m.end) for m in mentions]
    numbers = [n for n in _read_numbers(text) if _free(n.start, n.end, mention_spans)]
    keywords = _find_keywords(text, mention_spans + [(n.start, n.end) for n in numbers])
    spans = mention_spans + [(n.start, n.end) for n in numbers] + [(k.start, k.end) for k in keywords]
    return _Question(text, numbers, keywords, mentions, spans)


def _between_cost(tokens: list[str]) -> float:
    """Cost of the words between a number and a role word: link words are cheap, punctuation is not."""
    cost = 0.0
    for token in tokens:
        if token in _PUNCTUATION_COST:
            cost += _PUNCTUATION_COST[token]
        elif token in _LINK_WORDS:
            cost += 0.25
        elif token in _SEPARATORS:
            cost += 2.0
        else:
            cost += 1.0
    return cost


def _pair_cost(question: _Question, number: _Number, keyword: _Keyword) -> tuple[float, bool, bool] | None:
    """Cost of giving ``number`` the role of ``keyword``, whether the word comes after the number, and
    whether they touch; None when another number, role word or metric name lies between them."""
    after = keyword.start >= number.end
    start, end = (number.end, keyword.start) if after else (keyword.end, number.start)
    if question.blocked(start, end):
        return None
    tokens = _TOKEN_RE.findall(question.text[start:end])
    spec = keyword.spec
    kind = spec.kind
    if kind == "sales":
        kind = "count" if (after and not tokens and number.kind == "plain") else "noun"
    cost = _between_cost(tokens) + spec.penalty
    if kind == "verb":
        cost += 1.5 if after else 0.0
    elif kind == "participle":
        cost += 0.0 if after else 0.5
    elif kind == "noun" and after:
        cost += 0.5 + (0.0 if _DE_WORDS.intersection(tokens) else 1.0)
    elif kind == "count":
        cost += (-1.0 if not tokens else 0.0) if after else 0.5
    return cost, after, not tokens


def _roles_for(number: _Number, keyword: _Keyword, after: bool, touching: bool) -> tuple[str, ...]:
    """The roles ``keyword`` can give ``number``, given the kind of the number."""
    spec = keyword.spec
    roles = spec.roles
    if spec.kind == "sales" and after and touching and number.kind == "plain":
        roles = ("pedidos",)  # "30 vendas" counts orders; "vendas de 3.000" is money
    return tuple(role for role in roles if number.kind in _ROLE_KINDS[role])


def _given_value(question: _Question, mention: _Mention) -> _Number | None:
    """The value written next to a metric name ("ROAS de 4", "20% de ACOS"), if any."""
    text = question.text
    after = [n for n in question.numbers if n.start >= mention.end]
    before = [n for n in question.numbers if n.end <= mention.start]
    candidates = []
    if after:
        number = after[0]
        tokens = _TOKEN_RE.findall(text[mention.end:number.start])
        if (len(tokens) <= 4 and all(t in _GIVEN_LINKS for t in tokens)
                and not question.blocked(mention.end, number.start)):
            candidates.append(number)
    if before:
        number = before[-1]
        tokens = _TOKEN_RE.findall(text[number.end:mention.start])
        adjacent = not tokens and number.kind in {"percent", "ratio"}
        if (adjacent or tokens in (["de"], ["do"], ["da"])) and not question.blocked(number.end, mention.start):
            candidates.append(number)
    metric = "acos" if mention.metric == "break_even_acos" else mention.metric
    for number in candidates:
        if (number.kind in _ROLE_KINDS.get(metric, set()) and not _bound_to_role(question, number)
                and not (number.kind == "plain" and _counts_something(text, number))):
            return number
    return None


def _counts_something(text: str, number: _Number) -> bool:
    """Whether a plain number is followed by a noun it counts ("ACOS de 3 campanhas")."""
    following = _TOKEN_RE.findall(text[number.end:number.end + 40])
    if not following or not following[0].isalpha():
        return False
    return following[0] not in _LINK_WORDS | _SEPARATORS | _QUESTION_WORDS


def _bound_to_role(question: _Question, number: _Number) -> bool:
    """Whether a role word sits right next to ``number`` ("1.500 de investimento", "75 cliques")."""
    for keyword in question.keywords:
        pair = _pair_cost(question, number, keyword)
        if pair is not None and pair[0] <= 1.0 and _roles_for(number, keyword, pair[1], pair[2]):
            return True
    return False


@dataclass
class _Assignment:
    number: _Number
    roles: tuple[str, ...]


def _assign(question: _Question, given: list[_Number]) -> tuple[list[_Assignment], list[_Number]]:
    """Pair each number with its closest role word (cheapest pairs first, each used once).

    Returns the pairs and the numbers left without a role (times and given values excluded).
    """
    free_numbers = [n for n in question.numbers if n.kind != "time" and all(n is not g for g in given)]
    pairs = []
    for i, number in enumerate(free_numbers):
        for j, keyword in enumerate(question.keywords):
            pair = _pair_cost(question, number, keyword)
            if pair is None or pair[0] > _MAX_COST:
                continue
            roles = _roles_for(number, keyword, pair[1], pair[2])
            if roles:
                distance = min(abs(keyword.start - number.end), abs(number.start - keyword.end))
                pairs.append((pair[0], distance, i, j, roles))
    pairs.sort(key=lambda p: p[:4])
    used_numbers: set[int] = set()
    used_keywords: set[int] = set()
    assignments = []
    for _cost, _distance, i, j, roles in pairs:
        if i not in used_numbers and j not in used_keywords:
            used_numbers.add(i)
            used_keywords.add(j)
            assignments.append(_Assignment(free_numbers[i], roles))
    unassigned = [n for i, n in enumerate(free_numbers) if i not in used_numbers]
    return assignments, unassigned


def _resolve(assignments: list[_Assignment], variant: Variant) -> dict[str, list[_Number]] | None:
    """Give each number one role, preferring the roles ``variant`` uses; None when a role the
    variant needs gets two numbers that cannot be told apart."""
    wanted = (*variant.inputs, *variant.optional)
    chosen: dict[str, list[_Assignment]] = {}
    for assignment in assignments:
        role = next((r for r in assignment.roles if r in wanted), assignment.roles[0])
        chosen.setdefault(role, []).append(assignment)
    for role in list(chosen):
        group = chosen[role]
        if len(group) < 2 or role in _SUMMABLE:
            continue
        primary = [a for a in group if a.roles[0] == role]
        if len(primary) == 1:  # the others fall back to their usual role
            chosen[role] = primary
            for other in group:
                if other is not primary[0]:
                    chosen.setdefault(other.roles[0], []).append(other)
    result = {role: [a.number for a in group] for role, group in chosen.items()}
    if any(len(result.get(role, [])) > 1 and role not in _SUMMABLE for role in variant.inputs):
        return None
    return result


def _fill_by_kind(roles: dict[str, list[_Number]], variant: Variant, unassigned: list[_Number]) -> None:
    """Give a missing input the one leftover number of its kind when no other input takes that kind
    ("cpm: 85 reais, 34 mil impressões": the only money is the investment)."""
    missing = [role for role in variant.inputs if not roles.get(role)]
    if len(missing) != 1:
        return
    role = missing[0]
    for kind in ("money", "percent"):
        if kind not in _ROLE_KINDS[role]:
            continue
        same_kind_inputs = [r for r in variant.inputs if kind in _ROLE_KINDS[r]]
        leftovers = [n for n in unassigned if n.kind == kind]
        if len(same_kind_inputs) == 1 and len(leftovers) == 1:
            roles[role] = leftovers
            unassigned.remove(leftovers[0])
            return


def _inputs_for(variant: Variant, roles: dict[str, list[_Number]]) -> dict[str, Decimal] | None:
    """Numeric inputs for ``variant`` (cost parts in % of the price turned into reais), or None."""
    if not all(roles.get(role) for role in variant.inputs):
        return None
    values: dict[str, Decimal] = {}
    for role in (*variant.inputs, *variant.optional):
        numbers = roles.get(role, [])
        if not numbers or (len(numbers) > 1 and role not in _SUMMABLE):
            continue
        total = Decimal(0)
        for number in numbers:
            if number.kind == "percent" and role in _COST_PARTS:
                if "preco" not in values:
                    return None
                total += values["preco"] * number.value / _HUNDRED
            else:
                total += number.value
        values[role] = total
    return values


def _calculate(question: _Question, metric: str) -> Calculation | None:
    """The calculation of ``metric`` from the numbers of ``question``, or None when it cannot be
    done without guessing."""
    spec = METRICS[metric]
    given = [m.given for m in question.mentions if m.given is not None]
    assignments, unassigned = _assign(question, given)
    for mention in question.mentions:
        if mention.given is not None and not mention.qualified and mention.metric in _ROLE_KINDS:
            assignments.append(_Assignment(mention.given, (mention.metric,)))
    for variant in spec.variants:
        roles = _resolve(assignments, variant)
        if roles is None:
            return None
        leftovers = list(unassigned)
        _fill_by_kind(roles, variant, leftovers)
        values = _inputs_for(variant, roles)
        if values is None:
            continue
        uses_money = any(role in _MONEY_ROLES for role in variant.inputs)
        if uses_money and any(n.kind == "money" for n in leftovers):
            return None  # an amount in reais we could not place: the question is ambiguous
        used = [n for role in variant.inputs for n in roles[role]]
        if len({bool(_PER_PERIOD.match(question.text, n.end)) for n in used}) > 1:
            return None  # "R$ 100 por dia" against a monthly total: different periods
        try:
            return compute(metric, **{name: float(value) for name, value in values.items()})
        except CalculationError:
            return None
    return None


def _targets(question: _Question) -> list[str]:
    """Metrics asked for: named, not qualified ("ACOS alvo") and not followed by their own value."""
    targets: list[str] = []
    for mention in question.mentions:
        if not mention.qualified and mention.given is None and mention.metric not in targets:
            targets.append(mention.metric)
    return targets


def _analyse(question: str) -> tuple[_Question, list[str]] | None:
    """The read question and the metrics it asks for, or None when it is out of scope."""
    if not isinstance(question, str) or not question.strip() or len(question) > _MAX_QUESTION_CHARS:
        return None
    read = _read_question(question)
    if _OUT_OF_SCOPE.search(read.text) or not read.numbers or len(read.numbers) > _MAX_NUMBERS:
        return None
    for mention in read.mentions:
        mention.given = _given_value(read, mention)
    return read, _targets(read)


def detect_calculations(question: str) -> list[Calculation]:
    """Every metric the question asks for that can be computed exactly from its numbers
    ("Qual o CPC e o CPA?" gives two), in the order they are asked."""
    analysed = _analyse(question)
    if analysed is None:
        return []
    read, targets = analysed
    results = [_calculate(read, metric) for metric in targets if metric in METRICS]
    return [result for result in results if result is not None]


def detect_calculation(question: str) -> Calculation | None:
    """The exact answer to a calculation question in Portuguese, or None.

    None when the question asks for no metric ("vendi 100 unidades ontem"), for a definition or a
    judgement ("O que é ACOS?", "meu ACOS está em 30%, é bom?"), for a metric this module does not
    compute (ROI, CPC máximo, ACOS alvo), for several metrics at once (see
    :func:`detect_calculations`; ACOS and ROAS together give the ACOS, whose answer states the
    ROAS too), or when an input is missing or ambiguous.
    """
    analysed = _analyse(question)
    if analysed is None:
        return None
    read, targets = analysed
    if set(targets) == {"acos", "roas"}:
        targets = ["acos"]
    if len(targets) != 1 or targets[0] not in METRICS:
        return None
    return _calculate(read, targets[0])
