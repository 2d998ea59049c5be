"""What a question asks about: its type, and for a definition or a how-to-calculate question, its subject.

"O que é ACOS?" should be answered from the ACOS article, not from the break-even ACOS article that
mentions ACOS more often. :func:`read_question` recognises the question forms analysts use for a
definition ("o que é X", "o que significa X", "defina X") and for a formula ("como calcular X",
"qual a fórmula do X") on an accent-free copy, and takes the subject up to the first clause break
("o que é ACOS e como calcular?" is about ACOS). :func:`subject_document` names the corpus document
whose id or title is that subject; hybrid search puts it first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from melancia.data.build import slugify
from melancia.data.schema import fold

QuestionType = Literal["definition", "calculation", "other"]
QUESTION_TYPES: tuple[QuestionType, ...] = ("definition", "calculation", "other")

_ARTICLE = r"(?:(?:o|a|os|as|um|uma)\s+)?"
_DEFINE = r"(?:o\s+)?(?:que|qual)\s+(?:e|eh|seria|significa|quer\s+dizer)"
_CALCULATE = r"como\s+(?:se\s+)?(?:calcular|calculo|calcula|faco\s+o\s+calculo\s+d[oae])"
_FORMS: tuple[tuple[QuestionType, re.Pattern[str]], ...] = (
    ("definition", re.compile(rf"^{_DEFINE}\s+{_ARTICLE}(?P<s>.+)$")),
    ("definition", re.compile(rf"^(?:defina|definicao\s+de|explique|me\s+explica)\s+{_ARTICLE}(?P<s>.+)$")),
    ("calculation", re.compile(rf"^{_CALCULATE}\s+{_ARTICLE}(?P<s>.+)$")),
    ("calculation", re.compile(rf"^qual\s+(?:e\s+)?a\s+formula\s+d[oae]s?\s+{_ARTICLE}(?P<s>.+)$")),
)
_CLAUSE_BREAK = re.compile(r"\s+(?:e|ou|no|na|nos|nas|para|pra|em|com)\s+|[,;:?!.(]")
_MAX_SUBJECT_WORDS = 4


@dataclass(frozen=True)
class QuestionSubject:
    type: QuestionType
    subject: str | None
    """Folded subject words ("acos", "amazon dsp"); None for questions of type "other"."""


def read_question(question: str) -> QuestionSubject:
    text = " ".join(fold(question).split()).strip(" ?!.")
    for kind, form in _FORMS:
        match = form.match(text)
        if match:
            subject = _CLAUSE_BREAK.split(match["s"], maxsplit=1)[0].strip()
            if subject and len(subject.split()) <= _MAX_SUBJECT_WORDS:
                return QuestionSubject(kind, subject)
    return QuestionSubject("other", None)


def subject_document(question: str, documents: dict[str, str]) -> str | None:
    """The id of the document ``documents`` (id -> title) whose id or title's lead term is the question's
    subject ("ACOS" -> ``acos``; "Amazon DSP" -> ``amazon-dsp``), or None."""
    subject = read_question(question).subject
    if subject is None:
        return None
    wanted = slugify(subject)
    for doc_id, title in documents.items():
        lead = re.split(r"[:(]| - | — ", title, maxsplit=1)[0]
        if wanted in (doc_id, slugify(lead)):
            return doc_id
    return None
