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
    if must is not None:
        if not isinstance(must, list) or not all(isinstance(t, str) and t.strip("| ") for t in must):
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


def normalise(text: str) -> str:
    """Case-, accent-, punctuation- and whitespace-insensitive form of ``text`` for comparisons."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"[^\w%$]+", " ", text)
    return " ".join(text.split())


def term_present(term: str, text: str) -> bool:
    """Whether one ``must_include`` term (``a|b`` alternatives) occurs in ``text``.

    Case-, accent- and punctuation-insensitive; a term must start at a word boundary, and a term
    ending in a digit must not continue with another digit (``20%`` is not in ``120%``, ``2`` is not
    in ``25``), while a word stem may continue (``negativ`` matches ``negativar``).
    """
    haystack = normalise(text)
    for alternative in term.split("|"):
        needle = normalise(alternative)
        if not needle:
            continue
        tail = r"(?!\d)" if needle[-1].isdigit() else ""
        if re.search(rf"(?<!\w){re.escape(needle)}{tail}", haystack):
            return True
    return False
