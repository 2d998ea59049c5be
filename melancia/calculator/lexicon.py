"""What the question detector knows of Portuguese: number shapes, role words, metric names, link words.

Patterns match an accent-free, lower-case copy of the question. A role word ("gastei", "receita",
"cliques") says which input a nearby number is (:class:`KeywordSpec`); a metric name ("ACOS", "custo
por clique") says what is asked or, followed by a value, what is given. Link words are cheap to skip
between a number and its word, punctuation and separators are not (see :mod:`melancia.calculator.detector`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from melancia.calculator.formulas import COST_PARTS
from melancia.calculator.numbers import MULTIPLIER_PATTERN

NUMBER_PATTERN = re.compile(
    r"(?<![\w.,$])(?:(?P<cur>r\$|\$)\s*)?(?<![\w.,])(?P<digits>\d+(?:[.,]\d+)*)"
    rf"(?:\s*(?P<mult>{MULTIPLIER_PATTERN})\b)?"
    r"(?:\s*(?P<pct>%|por\s*cento|porcento)|\s*(?P<ratio>x|vezes)\b|\s*(?P<brl>reais|real|contos?|pilas?)\b"
    r"|\s*(?P<time>dias?|h|hs|horas?|min|minutos?|semanas?|meses|mes|anos?)\b)?"
)
TOKEN_PATTERN = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


@dataclass(frozen=True)
class KeywordSpec:
    roles: tuple[str, ...]
    """Roles the word can give a number, the usual one first."""
    kind: str
    """"verb" (gastei: number after), "participle" (R$ 270 gastos: number before), "noun" (money word),
    "count" (150 cliques), "sales" (vendas: money or count) or "qualifier" (no total, via anúncios)."""
    penalty: float = 0.0


def _k(roles: str, kind: str, penalty: float = 0.0) -> KeywordSpec:
    return KeywordSpec(tuple(roles.split()), kind, penalty)


_ADS = r"(?:anuncios?|ads|publicidade|midia|campanhas?|product ads|sponsored products)"
_KEYWORDS: list[tuple[str, KeywordSpec]] = [
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
KEYWORD_PATTERNS = [(re.compile(rf"(?<![\w$]){pattern}(?![\w])"), spec) for pattern, spec in _KEYWORDS]

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
MENTION_PATTERNS = [(metric, re.compile(rf"(?<![\w$]){pattern}(?![\w])")) for metric, pattern in _MENTIONS]
QUALIFIER_AFTER = re.compile(
    r"\s*(?:de\s+)?(?:alvo|objetivo|meta|maximo|max|minimo|ideal|desejado|desejavel|esperado|aceitavel|limite"
    r"|projetado|previsto)\b")
QUALIFIER_BEFORE = re.compile(r"(?:quero|queria|desejo|meta de|alvo de|objetivo de)\s+(?:(?:um|o|de|ter)\s+)?$")
OUT_OF_SCOPE = re.compile(r"\b(?:incrementa\w*|iroas|iacos|holdout)\b")


def _words(text: str) -> frozenset[str]:
    """The words of ``text`` (separated by spaces) as a set."""
    return frozenset(text.split())


LINK_WORDS = _words(
    "de do da dos das em no na nos nas foi foram era eram eh esta estao ta tava estava ficou fica deu o a os "
    "as um uma uns umas meu minha meus minhas seu sua nosso nossa ja so apenas quase aproximadamente cerca "
    "mais : =")
DE_WORDS = _words("de do da dos das em no na nos nas")
SEPARATORS = _words("e mas porem enquanto sendo que quando se ou alem tambem")
PUNCTUATION_COST = {",": 1.5, ";": 3.0, ".": 4.0, "?": 4.0, "!": 4.0, "(": 0.5, ")": 0.5, "[": 0.5, "]": 0.5,
                     "-": 0.5, "+": 1.0, "/": 1.0}
GIVEN_LINKS = _words(
    "de do da eh e esta estah ta tah fica ficou foi era atual atualmente em = igual a na casa perto cerca volta "
    "hoje agora medio media por")
QUESTION_WORDS = _words("qual quais quanto quanta quantos como entao hoje agora ontem certo bom ruim alto baixo")
PER_PERIOD = re.compile(r"\s*(?:(?:por|ao|a|/|cada)\s*(?:dia|semana|mes|hora)\b|diari[oa]s?\b|semanais\b"
                         r"|mensais\b|por\s+m[eê]s\b)")
MAX_COST = 3.0
MAX_QUESTION_CHARS = 1500  # calculation questions are short; long pasted reports go to the model
MAX_NUMBERS = 30

ROLE_KINDS = {
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
SUMMABLE = frozenset(("custo", *COST_PARTS))
MONEY_ROLES = frozenset(role for role, kinds in ROLE_KINDS.items() if "money" in kinds and role != "ignorar")
