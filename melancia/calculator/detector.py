"""The detector of calculation questions in Portuguese: a question in, the exact :class:`Calculation` out.

:func:`detect_calculation` recognises a calculation question written informally (with or without
accents, Brazilian or plain numbers, numbers before or after their words) and returns the exact
calculation, or ``None`` when the question is not a calculation, lacks a number, or is ambiguous. It
never guesses a missing input: then the model answers instead.

Detection works in four steps: numbers are read with their span and kind (money, percent, ratio,
count, time); metric names and role words (:mod:`melancia.calculator.lexicon`) are found in an
accent-free copy of the question; metric names followed by their own value ("ROAS de 4") are given
values and the other metric names are what is asked; finally each number is paired with the closest
role word (a small cost model over the words between them) and the pairs are resolved against the
inputs of the metric asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from melancia.calculator.formulas import COST_PARTS, HUNDRED, CalculationError
from melancia.calculator.lexicon import (
    DE_WORDS,
    GIVEN_LINKS,
    LINK_WORDS,
    MAX_COST,
    MAX_NUMBERS,
    MAX_QUESTION_CHARS,
    MONEY_ROLES,
    OUT_OF_SCOPE,
    PER_PERIOD,
    PUNCTUATION_COST,
    QUESTION_WORDS,
    ROLE_KINDS,
    SEPARATORS,
    SUMMABLE,
    TOKEN_PATTERN,
)
from melancia.calculator.metrics import METRICS, Calculation, Variant, compute
from melancia.calculator.reading import Keyword, Mention, Number, Question, read_question


def _between_cost(tokens: list[str]) -> float:
    """Cost of the words between a number and a role word: link words are cheap, punctuation is not."""
    cost = 0.0
    for token in tokens:
        if token in PUNCTUATION_COST:
            cost += PUNCTUATION_COST[token]
        elif token in LINK_WORDS:
            cost += 0.25
        elif token in SEPARATORS:
            cost += 2.0
        else:
            cost += 1.0
    return cost


def _pair_cost(question: Question, number: Number, keyword: Keyword) -> tuple[float, bool, bool] | None:
    """Cost of giving ``number`` the role of ``keyword``, whether the word comes after the number, and
    whether they touch; None when another number, role word or metric name lies between them."""
    after = keyword.start >= number.end
    start, end = (number.end, keyword.start) if after else (keyword.end, number.start)
    if question.blocked(start, end):
        return None
    tokens = TOKEN_PATTERN.findall(question.text[start:end])
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
        cost += 0.5 + (0.0 if DE_WORDS.intersection(tokens) else 1.0)
    elif kind == "count":
        cost += (-1.0 if not tokens else 0.0) if after else 0.5
    return cost, after, not tokens


def _roles_for(number: Number, keyword: Keyword, after: bool, touching: bool) -> tuple[str, ...]:
    """The roles ``keyword`` can give ``number``, given the kind of the number."""
    spec = keyword.spec
    roles = spec.roles
    if spec.kind == "sales" and after and touching and number.kind == "plain":
        roles = ("pedidos",)  # "30 vendas" counts orders; "vendas de 3.000" is money
    return tuple(role for role in roles if number.kind in ROLE_KINDS[role])


def _given_value(question: Question, mention: Mention) -> Number | None:
    """The value written next to a metric name ("ROAS de 4", "20% de ACOS"), if any."""
    text = question.text
    after = [n for n in question.numbers if n.start >= mention.end]
    before = [n for n in question.numbers if n.end <= mention.start]
    candidates = []
    if after:
        number = after[0]
        tokens = TOKEN_PATTERN.findall(text[mention.end:number.start])
        if (len(tokens) <= 4 and all(t in GIVEN_LINKS for t in tokens)
                and not question.blocked(mention.end, number.start)):
            candidates.append(number)
    if before:
        number = before[-1]
        tokens = TOKEN_PATTERN.findall(text[number.end:mention.start])
        adjacent = not tokens and number.kind in {"percent", "ratio"}
        if (adjacent or tokens in (["de"], ["do"], ["da"])) and not question.blocked(number.end, mention.start):
            candidates.append(number)
    metric = "acos" if mention.metric == "break_even_acos" else mention.metric
    for number in candidates:
        if (number.kind in ROLE_KINDS.get(metric, set()) and not _bound_to_role(question, number)
                and not (number.kind == "plain" and _counts_something(text, number))):
            return number
    return None


def _counts_something(text: str, number: Number) -> bool:
    """Whether a plain number is followed by a noun it counts ("ACOS de 3 campanhas")."""
    following = TOKEN_PATTERN.findall(text[number.end:number.end + 40])
    if not following or not following[0].isalpha():
        return False
    return following[0] not in LINK_WORDS | SEPARATORS | QUESTION_WORDS


def _bound_to_role(question: Question, number: Number) -> bool:
    """Whether a role word sits right next to ``number`` ("1.500 de investimento", "75 cliques")."""
    for keyword in question.keywords:
        pair = _pair_cost(question, number, keyword)
        if pair is not None and pair[0] <= 1.0 and _roles_for(number, keyword, pair[1], pair[2]):
            return True
    return False


@dataclass
class _Assignment:
    number: Number
    roles: tuple[str, ...]


def _assign(question: Question, given: list[Number]) -> tuple[list[_Assignment], list[Number]]:
    """Pair each number with its closest role word (cheapest pairs first, each used once).

    Returns the pairs and the numbers left without a role (times and given values excluded).
    """
    free_numbers = [n for n in question.numbers if n.kind != "time" and all(n is not g for g in given)]
    pairs = []
    for i, number in enumerate(free_numbers):
        for j, keyword in enumerate(question.keywords):
            pair = _pair_cost(question, number, keyword)
            if pair is None or pair[0] > MAX_COST:
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


def _resolve(assignments: list[_Assignment], variant: Variant) -> dict[str, list[Number]] | None:
    """Give each number one role, preferring the roles ``variant`` uses; None when a role the
    variant needs gets two numbers that cannot be told apart."""
    wanted = (*variant.inputs, *variant.optional)
    chosen: dict[str, list[_Assignment]] = {}
    for assignment in assignments:
        role = next((r for r in assignment.roles if r in wanted), assignment.roles[0])
        chosen.setdefault(role, []).append(assignment)
    for role in list(chosen):
        group = chosen[role]
        if len(group) < 2 or role in SUMMABLE:
            continue
        primary = [a for a in group if a.roles[0] == role]
        if len(primary) == 1:  # the others fall back to their usual role
            chosen[role] = primary
            for other in group:
                if other is not primary[0]:
                    chosen.setdefault(other.roles[0], []).append(other)
    result = {role: [a.number for a in group] for role, group in chosen.items()}
    if any(len(result.get(role, [])) > 1 and role not in SUMMABLE for role in variant.inputs):
        return None
    return result


def _fill_by_kind(roles: dict[str, list[Number]], variant: Variant, unassigned: list[Number]) -> None:
    """Give a missing input the one leftover number of its kind when no other input takes that kind
    ("cpm: 85 reais, 34 mil impressões": the only money is the investment)."""
    missing = [role for role in variant.inputs if not roles.get(role)]
    if len(missing) != 1:
        return
    role = missing[0]
    for kind in ("money", "percent"):
        if kind not in ROLE_KINDS[role]:
            continue
        same_kind_inputs = [r for r in variant.inputs if kind in ROLE_KINDS[r]]
        leftovers = [n for n in unassigned if n.kind == kind]
        if len(same_kind_inputs) == 1 and len(leftovers) == 1:
            roles[role] = leftovers
            unassigned.remove(leftovers[0])
            return


def _inputs_for(variant: Variant, roles: dict[str, list[Number]]) -> dict[str, Decimal] | None:
    """Numeric inputs for ``variant`` (cost parts in % of the price turned into reais), or None."""
    if not all(roles.get(role) for role in variant.inputs):
        return None
    values: dict[str, Decimal] = {}
    for role in (*variant.inputs, *variant.optional):
        numbers = roles.get(role, [])
        if not numbers or (len(numbers) > 1 and role not in SUMMABLE):
            continue
        total = Decimal(0)
        for number in numbers:
            if number.kind == "percent" and role in COST_PARTS:
                if "preco" not in values:
                    return None
                total += values["preco"] * number.value / HUNDRED
            else:
                total += number.value
        values[role] = total
    return values


def _calculate(question: Question, metric: str) -> Calculation | None:
    """The calculation of ``metric`` from the numbers of ``question``, or None when it cannot be
    done without guessing."""
    spec = METRICS[metric]
    given = [m.given for m in question.mentions if m.given is not None]
    assignments, unassigned = _assign(question, given)
    for mention in question.mentions:
        if mention.given is not None and not mention.qualified and mention.metric in ROLE_KINDS:
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
        uses_money = any(role in MONEY_ROLES for role in variant.inputs)
        if uses_money and any(n.kind == "money" for n in leftovers):
            return None  # an amount in reais we could not place: the question is ambiguous
        used = [n for role in variant.inputs for n in roles[role]]
        if len({bool(PER_PERIOD.match(question.text, n.end)) for n in used}) > 1:
            return None  # "R$ 100 por dia" against a monthly total: different periods
        try:
            return compute(metric, **{name: float(value) for name, value in values.items()})
        except CalculationError:
            return None
    return None


def _targets(question: Question) -> list[str]:
    """Metrics asked for: named, not qualified ("ACOS alvo") and not followed by their own value."""
    targets: list[str] = []
    for mention in question.mentions:
        if not mention.qualified and mention.given is None and mention.metric not in targets:
            targets.append(mention.metric)
    return targets


def _analyse(question: str) -> tuple[Question, list[str]] | None:
    """The read question and the metrics it asks for, or None when it is out of scope."""
    if not isinstance(question, str) or not question.strip() or len(question) > MAX_QUESTION_CHARS:
        return None
    read = read_question(question)
    if OUT_OF_SCOPE.search(read.text) or not read.numbers or len(read.numbers) > MAX_NUMBERS:
        return None
    for mention in read.mentions:
        mention.given = _given_value(read, mention)
    return read, _targets(read)


def answer_calculations(question: str) -> list[Calculation]:
    """Every metric the question asks for, each computed exactly, in the order asked; empty unless all of
    them can be (answering one of two metrics asked would read as a complete answer). ACOS and ROAS asked
    together give the ACOS alone, whose answer states the ROAS too."""
    analysed = _analyse(question)
    if analysed is None:
        return []
    read, targets = analysed
    if set(targets) == {"acos", "roas"}:
        targets = ["acos"]
    if not targets or any(metric not in METRICS for metric in targets):
        return []
    results = [_calculate(read, metric) for metric in targets]
    return [r for r in results if r is not None] if all(results) else []


def detect_calculation(question: str) -> Calculation | None:
    """The exact answer to a calculation question in Portuguese, or None.

    None when the question asks for no metric ("vendi 100 unidades ontem"), for a definition or a
    judgement ("O que é ACOS?", "meu ACOS está em 30%, é bom?"), for a metric this module does not
    compute (ROI, CPC máximo, ACOS alvo), for several metrics at once (see :func:`answer_calculations`),
    or when an input is missing or ambiguous.
    """
    results = answer_calculations(question)
    return results[0] if len(results) == 1 else None
