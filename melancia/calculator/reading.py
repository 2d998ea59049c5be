"""Reading a question: its numbers (with value and kind), role words and metric names, with their spans.

The question is normalised first (lower case, no accents, "é" kept as "eh" so it is not "e"); every
later step of :mod:`melancia.calculator.detector` works on the spans found here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from melancia.calculator.lexicon import (
    KEYWORD_PATTERNS,
    MENTION_PATTERNS,
    NUMBER_PATTERN,
    QUALIFIER_AFTER,
    QUALIFIER_BEFORE,
    KeywordSpec,
)
from melancia.calculator.numbers import MULTIPLIERS, digits_to_decimal, strip_accents


def normalize(text: str) -> str:
    """Lower case, no accents, "é" kept apart from "e" (as "eh"), plain spaces and dashes."""
    text = text.lower().replace("\u00a0", " ")
    text = re.sub(r"(?<!\w)é(?!\w)", "eh", text)
    text = strip_accents(text)
    return re.sub(r"[\u2010-\u2015]", "-", text)


@dataclass
class Number:
    start: int
    end: int
    value: Decimal
    kind: str
    """"money" (R$/reais), "percent", "ratio" (5x), "time" (7 dias) or "plain"."""


@dataclass
class Keyword:
    """A role word found in the question."""

    start: int
    end: int
    spec: KeywordSpec


@dataclass
class Mention:
    start: int
    end: int
    metric: str
    qualified: bool = False
    given: Number | None = None


def read_numbers(text: str) -> list[Number]:
    """Every number of the normalized question with its value and kind."""
    numbers = []
    for match in NUMBER_PATTERN.finditer(text):
        try:
            value = digits_to_decimal(match["digits"])
        except (ValueError, InvalidOperation):
            continue
        if match["mult"]:
            value *= MULTIPLIERS[match["mult"]]
        kind = ("time" if match["time"] else "percent" if match["pct"] else "ratio" if match["ratio"]
                else "money" if (match["cur"] or match["brl"]) else "plain")
        numbers.append(Number(match.start(), match.end(), value, kind))
    return numbers


def free(start: int, end: int, taken: list[tuple[int, int]]) -> bool:
    return all(end <= s or start >= e for s, e in taken)


def find_mentions(text: str) -> list[Mention]:
    """Metric names in the question (longest first, no overlaps), with their qualifiers."""
    found = []
    for metric, regex in MENTION_PATTERNS:
        found += [(m.start(), m.end(), metric) for m in regex.finditer(text)]
    found.sort(key=lambda item: item[0] - item[1])
    taken: list[tuple[int, int]] = []
    mentions = []
    for start, end, metric in found:
        if free(start, end, taken):
            taken.append((start, end))
            qualified = bool(QUALIFIER_AFTER.match(text, end) or QUALIFIER_BEFORE.search(text[:start]))
            mentions.append(Mention(start, end, metric, qualified))
    return sorted(mentions, key=lambda m: m.start)


def find_keywords(text: str, taken: list[tuple[int, int]]) -> list[Keyword]:
    """Role words outside metric names and numbers (longest first, no overlaps)."""
    found = []
    for regex, spec in KEYWORD_PATTERNS:
        found += [(m.start(), m.end(), spec) for m in regex.finditer(text)]
    found.sort(key=lambda item: item[0] - item[1])
    taken = list(taken)
    keywords = []
    for start, end, spec in found:
        if free(start, end, taken):
            taken.append((start, end))
            keywords.append(Keyword(start, end, spec))
    return sorted(keywords, key=lambda k: k.start)


@dataclass
class Question:
    """A question read into numbers, role words and metric names."""

    text: str
    numbers: list[Number]
    keywords: list[Keyword]
    mentions: list[Mention]
    spans: list[tuple[int, int]] = field(default_factory=list)

    def blocked(self, start: int, end: int) -> bool:
        """Whether a number, role word or metric name lies inside ``text[start:end]``."""
        return any(start <= s and e <= end for s, e in self.spans)


def read_question(question: str) -> Question:
    """Normalize ``question`` and find its numbers, role words and metric names."""
    text = normalize(question)
    mentions = find_mentions(text)
    mention_spans = [(m.start, m.end) for m in mentions]
    numbers = [n for n in read_numbers(text) if free(n.start, n.end, mention_spans)]
    keywords = find_keywords(text, mention_spans + [(n.start, n.end) for n in numbers])
    spans = mention_spans + [(n.start, n.end) for n in numbers] + [(k.start, k.end) for k in keywords]
    return Question(text, numbers, keywords, mentions, spans)
