"""The metric registry: what the calculator computes, from which inputs, and :func:`compute`.

:func:`compute` turns named inputs into a :class:`Calculation` (ACOS, ROAS, TACOS, CPC, CTR, taxa de
conversão, CPA, CPM and ACOS de equilíbrio) with the same formulas the knowledge base teaches
(``data/corpus``), the worked formula written with Brazilian numbers and a complete answer in
Portuguese. Each :class:`MetricSpec` lists its ways of computing (:class:`Variant`); the first whose
inputs are all given is used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation

from melancia.calculator.formulas import (
    COST_PARTS,
    CalculationError,
    INPUT_LABELS,
    acos,
    acos_from_roas,
    break_even_from_costs,
    break_even_from_profit,
    check_margin,
    count,
    cpa,
    cpa_from_rates,
    cpc,
    cpm,
    ctr,
    cvr,
    money,
    percent_plain,
    read_acos,
    read_break_even,
    read_cvr,
    read_roas,
    read_tacos,
    roas,
    roas_from_acos,
    tacos,
    tacos_from_parts,
    worked_costs,
)
from melancia.calculator.numbers import format_brl, format_percent, format_plain, format_ratio, strip_accents, to_decimal


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
        inputs = {k: to_decimal(v) for k, v in self.inputs.items()}
        reading = spec.reading(to_decimal(self.value), inputs)
        return (f"{spec.subject} é {self.formatted}.\n"
                f"Fórmula: {self.formula}\n"
                f"Cálculo: {self.worked}\n"
                f"Interpretação: {reading}")

    def as_dict(self) -> dict:
        """JSON-friendly: every field plus ``answer``."""
        return {**asdict(self), "inputs": dict(self.inputs), "answer": self.answer()}


_ACOS_FORMULA = "ACOS = investimento ÷ receita de anúncios × 100"

METRICS: dict[str, MetricSpec] = {spec.name: spec for spec in (
    MetricSpec(
        "acos", "ACOS (custo de publicidade sobre vendas)", "O ACOS", "%",
        (Variant(("investimento", "receita"), _ACOS_FORMULA, acos,
                 lambda v: f"{money(v, 'investimento')} ÷ {money(v, 'receita')} × 100", ("margem",)),
         Variant(("roas",), "ACOS = 100 ÷ ROAS", acos_from_roas,
                 lambda v: f"100 ÷ {count(v, 'roas')}", ("margem",))),
        read_acos),
    MetricSpec(
        "roas", "ROAS (retorno sobre investimento em anúncios)", "O ROAS", "x",
        (Variant(("receita", "investimento"), "ROAS = receita de anúncios ÷ investimento", roas,
                 lambda v: f"{money(v, 'receita')} ÷ {money(v, 'investimento')}", ("margem",)),
         Variant(("acos",), "ROAS = 100 ÷ ACOS (em %)", roas_from_acos,
                 lambda v: f"100 ÷ {count(v, 'acos')}", ("margem",))),
        read_roas),
    MetricSpec(
        "tacos", "TACOS (ACOS total)", "O TACOS", "%",
        (Variant(("investimento", "faturamento_total"), "TACOS = investimento ÷ faturamento total × 100", tacos,
                 lambda v: f"{money(v, 'investimento')} ÷ {money(v, 'faturamento_total')} × 100"),
         Variant(("investimento", "receita", "organico"),
                 "TACOS = investimento ÷ (receita de anúncios + receita orgânica) × 100", tacos_from_parts,
                 lambda v: (f"{money(v, 'investimento')} ÷ ({money(v, 'receita')} + {money(v, 'organico')})"
                            " × 100"))),
        read_tacos),
    MetricSpec(
        "cpc", "CPC (custo por clique)", "O CPC", "R$",
        (Variant(("investimento", "cliques"), "CPC = investimento ÷ cliques", cpc,
                 lambda v: f"{money(v, 'investimento')} ÷ {count(v, 'cliques')}"),),
        lambda value, v: f"cada clique custou, em média, {format_brl(value)}."),
    MetricSpec(
        "ctr", "CTR (taxa de cliques)", "O CTR", "%",
        (Variant(("cliques", "impressoes"), "CTR = cliques ÷ impressões × 100", ctr,
                 lambda v: f"{count(v, 'cliques')} ÷ {count(v, 'impressoes')} × 100"),),
        lambda value, v: f"cerca de {format_plain(value * 10)} cliques a cada 1.000 impressões."),
    MetricSpec(
        "cvr", "Taxa de conversão (CVR)", "A taxa de conversão (CVR)", "%",
        (Variant(("pedidos", "cliques"), "CVR = pedidos ÷ cliques × 100", cvr,
                 lambda v: f"{count(v, 'pedidos')} ÷ {count(v, 'cliques')} × 100"),),
        read_cvr),
    MetricSpec(
        "cpa", "CPA (custo por aquisição)", "O CPA", "R$",
        (Variant(("investimento", "pedidos"), "CPA = investimento ÷ pedidos", cpa,
                 lambda v: f"{money(v, 'investimento')} ÷ {count(v, 'pedidos')}"),
         Variant(("cpc", "cvr"), "CPA = CPC ÷ taxa de conversão", cpa_from_rates,
                 lambda v: f"{money(v, 'cpc')} ÷ {percent_plain(v['cvr'])}")),
        lambda value, v: (f"cada pedido custou, em média, {format_brl(value)} em anúncios; compare com o lucro "
                          "por pedido antes dos anúncios (o CPA máximo).")),
    MetricSpec(
        "cpm", "CPM (custo por mil impressões)", "O CPM", "R$",
        (Variant(("investimento", "impressoes"), "CPM = investimento ÷ impressões × 1.000", cpm,
                 lambda v: f"{money(v, 'investimento')} ÷ {count(v, 'impressoes')} × 1.000"),),
        lambda value, v: f"cada mil exibições do anúncio custaram {format_brl(value)}."),
    MetricSpec(
        "break_even_acos", "ACOS de equilíbrio (break-even ACOS)", "O ACOS de equilíbrio", "%",
        (Variant(("preco", "custo"), "ACOS de equilíbrio = (preço − custos) ÷ preço × 100",
                 break_even_from_costs, worked_costs, COST_PARTS),
         Variant(("preco", "lucro"), "ACOS de equilíbrio = lucro antes dos anúncios ÷ preço × 100",
                 break_even_from_profit, lambda v: f"{money(v, 'lucro')} ÷ {money(v, 'preco')} × 100"),
         Variant(("margem",), "ACOS de equilíbrio = margem de lucro antes dos anúncios (% do preço)",
                 lambda v: check_margin(v["margem"]),
                 lambda v: f"margem antes dos anúncios de {percent_plain(v['margem'])} → ACOS de equilíbrio")),
        read_break_even),
)}

_METRIC_ALIASES = {
    "taxa de conversao": "cvr", "conversao": "cvr", "taxa_de_conversao": "cvr",
    "acos de equilibrio": "break_even_acos", "acos_de_equilibrio": "break_even_acos",
    "break-even acos": "break_even_acos", "break even acos": "break_even_acos", "break_even": "break_even_acos",
    "taxa de cliques": "ctr", "custo por clique": "cpc", "custo por aquisicao": "cpa", "custo por mil": "cpm",
}


def _spec_for(metric: str) -> MetricSpec:
    """The registry entry for ``metric`` (key, label-like alias, any case or accents)."""
    key = strip_accents(str(metric)).lower().strip()
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
        name = strip_accents(raw_name).lower()
        if name not in accepted:
            raise CalculationError(f"Entrada desconhecida para {spec.label}: {raw_name!r}. "
                                   f"Entradas aceitas: {', '.join(sorted(accepted))}.")
        if raw_value is None:
            continue
        try:
            value = to_decimal(raw_value)  # type: ignore[arg-type]
        except (TypeError, ValueError, InvalidOperation) as exc:
            raise CalculationError(f"Valor inválido para {INPUT_LABELS.get(name, name)}: {raw_value!r}.") from exc
        if value < 0:
            raise CalculationError(f"O valor de {INPUT_LABELS.get(name, name)} não pode ser negativo "
                                   f"({format_plain(value)}).")
        values[name] = value
    if "margem" in values:
        check_margin(values["margem"])
    return values


def _pick_variant(spec: MetricSpec, values: Mapping[str, Decimal]) -> Variant:
    """The first way of computing ``spec`` whose inputs are all present, or a CalculationError."""
    for variant in spec.variants:
        if all(name in values for name in variant.inputs):
            return variant
    closest = min(spec.variants, key=lambda v: sum(name not in values for name in v.inputs))
    needed = " e ".join(INPUT_LABELS[name] for name in closest.inputs)
    missing = ", ".join(INPUT_LABELS[name] for name in closest.inputs if name not in values)
    raise CalculationError(f"Para calcular o {spec.label} preciso de {needed}; falta: {missing}.")


def _format_value(unit: str, value: Decimal) -> str:
    """The result in its unit: "20,00%", "R$ 1,25" or "5,00x"."""
    if unit == "%":
        return format_percent(value)
    if unit == "R$":
        return format_brl(value)
    return format_ratio(value)


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
