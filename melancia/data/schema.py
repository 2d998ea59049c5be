"""The example format (ChatML messages + metadata) and the rules every example must satisfy.

An example is one JSON object::

    {"id": "metricas-001",
     "messages": [{"role": "system", "content": "..."},
                  {"role": "user", "content": "O que é ACOS?"},
                  {"role": "assistant", "content": "ACOS é ..."}],
     "metadata": {"category": "metricas", "source": "melancia-curado",
                  "must_include": ["ACOS", "investimento|gasto"]}}

``must_include`` (optional) lists the key terms a correct final answer contains; ``|`` separates
alternatives for one term. :func:`problems` returns every broken rule, in words a person can act on.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from typing import Any

ROLES = ("system", "user", "assistant")
SYNTHETIC_SOURCE = "synthetic"
"""``metadata.source`` of teacher-made examples; they may only ever be used for training."""
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# UTF-8 text decoded as Latin-1 and re-encoded: "Ã©" for "é", "Ã§" for "ç", "Â " for a no-break space.
_MOJIBAKE = re.compile(r"Ã[\u0080-\u00bf]|Â[\u00a0-\u00bf]|â€")


def problems(record: Any) -> list[str]:
    """Every schema rule ``record`` breaks (empty when it is a valid example)."""
    if not isinstance(record, dict):
        return [f"expected a JSON object, got {type(record).__name__}"]
    found: list[str] = []
    rid = record.get("id")
    if rid is None:
        found.append("missing field 'id'")
    elif not isinstance(rid, str) or not rid.strip():
        found.append(f"field 'id': expected a non-empty string, got {rid!r}")
    found.extend(_message_problems(record.get("messages")))
    found.extend(_metadata_problems(record.get("metadata")))
    unknown = set(record) - {"id", "messages", "metadata"}
    if unknown:
        found.append(f"unknown field(s) {sorted(unknown)}; expected id, messages, metadata")
    return found


def _message_problems(messages: Any) -> list[str]:
    if messages is None:
        return ["missing field 'messages'"]
    if not isinstance(messages, list):
        return [f"field 'messages': expected a list, got {type(messages).__name__}"]
    found: list[str] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            found.append(f"{where}: expected an object with role and content")
            continue
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            found.append(f"{where}.role: expected one of {list(ROLES)}, got {role!r}")
        if not isinstance(content, str):
            found.append(f"{where}.content: expected a string, got {type(content).__name__}")
        elif not content.strip():
            found.append(f"{where}.content: is empty")
        else:
            found.extend(f"{where}.content: {p}" for p in text_problems(content))
        extra = set(message) - {"role", "content"}
        if extra:
            found.append(f"{where}: unknown field(s) {sorted(extra)}")
    if found:
        return found
    roles = [m["role"] for m in messages]
    turns = roles[1:] if roles and roles[0] == "system" else roles
    if "system" in turns:
        found.append("messages: a system message may only come first")
    elif len(turns) < 2:
        found.append("messages: expected at least one user turn followed by an assistant turn")
    else:
        expected = ["user", "assistant"] * (len(turns) // 2 + 1)
        for i, (got, want) in enumerate(zip(turns, expected, strict=False)):
            if got != want:
                index = i + (len(roles) - len(turns))
                found.append(f"messages[{index}].role: expected {want!r} (turns alternate user/assistant), got {got!r}")
                break
        else:
            if turns[-1] != "assistant":
                found.append("messages: the last turn must be the assistant's answer")
    return found


def _metadata_problems(metadata: Any) -> list[str]:
    if metadata is None:
        return ["missing field 'metadata' (needs category and source)"]
    if not isinstance(metadata, dict):
        return [f"field 'metadata': expected an object, got {type(metadata).__name__}"]
    found = []
    for key in ("category", "source"):
        value = metadata.get(key)
        if not isinstance(value, str) or not value.strip():
            found.append(f"metadata.{key}: expected a non-empty string, got {value!r}")
    must = metadata.get("must_include")
    well_formed = isinstance(must, list) and all(isinstance(t, str) and t.strip("| ") for t in must)
    if must is not None and not well_formed:
        found.append("metadata.must_include: expected a list of non-empty strings (alternatives split by '|')")
    return found


def text_problems(text: str) -> list[str]:
    """Encoding damage in a piece of text: control characters, replacement characters, mojibake."""
    found = []
    if _CONTROL.search(text):
        found.append("contains control characters")
    if "\ufffd" in text:
        found.append("contains U+FFFD replacement characters (text was decoded with the wrong encoding)")
    match = _MOJIBAKE.search(text)
    if match:
        found.append(f"looks double-encoded (mojibake {match.group(0)!r}); re-save the source as UTF-8")
    return found


# --------------------------------------------------------------------------- accessors


def question(record: dict[str, Any]) -> str:
    """The last user turn: the question the final answer responds to."""
    return next(m["content"] for m in reversed(record["messages"]) if m["role"] == "user")


def answer(record: dict[str, Any]) -> str:
    """The final assistant turn: the reference answer."""
    return record["messages"][-1]["content"]


def category(record: dict[str, Any]) -> str:
    return record["metadata"]["category"]


def source(record: dict[str, Any]) -> str:
    return record["metadata"]["source"]


def fold(text: str) -> str:
    """``text`` case-folded, with accents removed (``"Ação"`` -> ``"acao"``)."""
    text = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in text if not unicodedata.combining(c))


def normalise(text: str) -> str:
    """Case-, accent-, punctuation- and whitespace-insensitive form of ``text`` for comparisons."""
    text = re.sub(r"[^\w%$]+", " ", fold(text))
    return " ".join(text.split())


# --------------------------------------------------------------------------- term matching
#
# One implementation serves the data pipeline (every must_include term is in its reference answer)
# and evaluation (which terms a model's answer contains). Text and term are both turned into
# comparable tokens, then the term's tokens must appear consecutively in the text's tokens.

_CURRENCY = re.compile(r"(?:\b(?:r|us))?\$")
_COMPARABLE_TOKEN = re.compile(r"[0-9]+(?:[.,][0-9]+)*|[^\W\d_]+|%")
_SEPARATOR = re.compile(r"[.,]")
INFLECTIONS = ("s", "es", "a", "as", "o", "os", "e", "ar", "ado", "ada", "ados", "adas", "ando", "acao", "acoes")
"""Endings a word of the text may add to a term's last word: plurals, gender, verb and noun forms
(``negativ`` matches ``negativas`` and ``negativação``; ``ROAS`` does not match ``ROASX``)."""


def comparable_tokens(text: str) -> list[str]:
    """Tokens of ``text`` as term matching compares them.

    Case and accents are folded, currency signs (``R$``, ``US$``, ``$``) and punctuation dropped,
    ``%`` kept as its own token, letters and digits split apart (``5x`` is ``5 x``), and each number
    written as its value (see :func:`number_tokens`): ``"R$ 1.000,00"`` -> ``["1000"]``.
    """
    tokens: list[str] = []
    for match in _COMPARABLE_TOKEN.finditer(_CURRENCY.sub(" ", fold(text))):
        token = match.group()
        tokens.extend(number_tokens(token) if token[0].isdigit() else [token])
    return tokens


def number_tokens(raw: str) -> list[str]:
    """The value of a number written with ``.``/``,`` separators, in plain form (``"1000.5"``).

    The rule, for Brazilian and English writing alike:

    - both ``.`` and ``,`` present: the last one is the decimal mark, the other separates thousands
      (``1.000,50`` and ``1,000.50`` are 1000.5);
    - one separator, repeated: thousands (``1.000.000``);
    - one separator, once, between 1-3 digits not starting with 0 and exactly 3 digits: thousands
      (``1.500``, ``1,500`` and ``14.731`` are integers; Brazilian style, the way the data writes them);
    - otherwise it is the decimal mark (``1,5``, ``1.5``, ``12,5``, ``0,250``, ``3.14159``).

    Trailing zeros do not matter (``20,0`` is ``20``). Digits that fit none of these shapes (``1,2,3``,
    ``1.00.0``) are read as separate integers. Signs are not part of the number.
    """
    groups = _SEPARATOR.split(raw)
    separators = _SEPARATOR.findall(raw)
    if not separators:
        return [_plain(raw, "")]
    if len(set(separators)) == 2:
        decimal_mark_repeats = separators[-1] in separators[:-1]
        if not decimal_mark_repeats and _thousands_groups(groups[:-1]):
            return [_plain("".join(groups[:-1]), groups[-1])]
    elif _thousands_groups(groups):
        return [_plain("".join(groups), "")]
    elif len(groups) == 2:
        return [_plain(groups[0], groups[1])]
    return [_plain(group, "") for group in groups]


def _thousands_groups(groups: list[str]) -> bool:
    head, *rest = groups
    return 1 <= len(head) <= 3 and not head.startswith("0") and bool(rest) and all(len(g) == 3 for g in rest)


def _plain(whole: str, fraction: str) -> str:
    value = Decimal(f"{whole}.{fraction or '0'}").normalize()
    return format(value, "f")


def _same_word(found: str, wanted: str) -> bool:
    if found == wanted:
        return True
    return wanted.isalpha() and found.startswith(wanted) and found[len(wanted):] in INFLECTIONS


def tokens_contain(haystack: list[str], needle: list[str]) -> bool:
    """Whether ``needle`` occurs as consecutive tokens of ``haystack`` (its last word may inflect)."""
    if not needle:
        return False
    *head, last = needle
    size = len(needle)
    for start in range(len(haystack) - size + 1):
        if haystack[start:start + size - 1] == head and _same_word(haystack[start + size - 1], last):
            return True
    return False


def term_in_tokens(term: str, tokens: list[str]) -> bool:
    """:func:`term_present` against text already split by :func:`comparable_tokens`."""
    return any(tokens_contain(tokens, comparable_tokens(alternative)) for alternative in term.split("|"))


def term_present(term: str, text: str) -> bool:
    """Whether one ``must_include`` term (``a|b`` alternatives, any one suffices) occurs in ``text``.

    Case-, accent- and punctuation-insensitive, on whole tokens: a term never matches inside a longer
    word or number (``20%`` is not in ``120%``, ``2`` is not in ``25``, ``ROAS`` is not in ``ROASX``)
    except that its last word may take an ending from :data:`INFLECTIONS` (``negativ`` matches
    ``negativar``). Numbers compare by value across Brazilian and English writing (``1.000`` = ``1000``
    = ``1,000``; ``12,5`` = ``12.5``; ``R$ 1.000,00`` = ``R$1000``; ``20%`` = ``20 %`` = ``20,0%``),
    with the separator rule of :func:`number_tokens`. An empty term matches nothing.
    """
    return term_in_tokens(term, comparable_tokens(text))
