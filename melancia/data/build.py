"""``melancia data build``: turn posts and Q&A files into ChatML examples.

The rule for posts (Markdown or HTML), documented in the README:

1. The text before the first section answers the post's title, asked as a question: the title
   itself when it ends with ``?``, otherwise ``"<title>: o que preciso saber?"``.
2. Each section (``##`` heading, with its sub-headings folded in) answers its heading: the heading
   itself when it is a question (ends with ``?`` or starts with como/o que/qual/quando/por que/
   quanto/onde), otherwise ``"<heading> (<title>): o que preciso saber?"``.
3. Answers are trimmed at a sentence boundary to ``answer_token_budget`` tokens of the target
   tokenizer (never in the middle of a word); sections under ``min_answer_words`` words are skipped.
4. ``id`` is ``post-<file stem>-<slug of the heading>``, stable across rebuilds; ``metadata`` keeps
   the post's category, ``source: corpus``, the document id and the heading.

Q&A files are JSONL (full ChatML records, or flat rows with question/answer) or CSV with a header
(``question``/``pergunta``, ``answer``/``resposta``, optional ``category``, ``source``, ``id``,
``must_include`` with terms split by ``;`` and alternatives by ``|``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from melancia.data.documents import DOCUMENT_SUFFIXES, Document, Section, parse_document
from melancia.data.io import DataError, expand_inputs, read_jsonl, read_text_file
from melancia.data.validate import Rejection

QA_SUFFIXES = (".jsonl", ".csv")
_INTERROGATIVES = ("como ", "o que ", "qual ", "quais ", "quando ", "por que ", "porque ", "quanto ",
                   "quantos ", "quantas ", "onde ", "quem ", "devo ", "vale ", "é ", "existe ")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")
_QUESTION_KEYS = ("question", "pergunta")
_ANSWER_KEYS = ("answer", "resposta")
_CATEGORY_KEYS = ("category", "categoria")


@dataclass
class BuildResult:
    examples: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


def chat_record(rid: str, system_prompt: str, user: str, assistant: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """An example in the ChatML shape used everywhere in MelancIA."""
    return {"id": rid, "messages": [{"role": "system", "content": system_prompt},
                                    {"role": "user", "content": user},
                                    {"role": "assistant", "content": assistant}],
            "metadata": metadata}


# --------------------------------------------------------------------------- posts


def slugify(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:60] or "secao"


def section_question(heading: str, title: str) -> str:
    """The question a section answers (rule 1 and 2 of the module docstring)."""
    heading = heading.strip()
    if not heading:
        return title if title.endswith("?") else f"{title}: o que preciso saber?"
    if heading.endswith("?"):
        return heading
    if heading.casefold().startswith(_INTERROGATIVES):
        return heading.rstrip(".:") + "?"
    return f"{heading} ({title}): o que preciso saber?"


def trim_to_budget(text: str, budget: int, count_tokens: Callable[[str], int]) -> str:
    """The longest prefix of whole sentences (or lines) of ``text`` within ``budget`` tokens.

    Line breaks and list markers are kept as written. A trailing lead-in ending with ``:`` whose
    list did not fit is dropped. When even the first sentence is too long, it is cut at the last
    whole word that fits and ends with an ellipsis; a word is never split.
    """
    text = text.strip()
    if count_tokens(text) <= budget:
        return text
    cuts = [m.start() for m in _SENTENCE_END.finditer(text)]
    fitting = _largest(len(cuts), lambda n: count_tokens(text[:cuts[n - 1]]) <= budget)
    if fitting:
        kept = cuts[:fitting]
        while len(kept) > 1 and text[:kept[-1]].rstrip().endswith(":"):
            kept.pop()
        return text[:kept[-1]].rstrip()
    words = text[:cuts[0]].split() if cuts else text.split()
    count = _largest(len(words), lambda n: count_tokens(" ".join(words[:n]) + "…") <= budget)
    return (" ".join(words[:count]).rstrip(",;:") + "…") if count else ""


def _largest(upper: int, fits: Callable[[int], bool]) -> int:
    """Largest n in 0..upper with fits(n), for a monotone ``fits`` (binary search)."""
    lo, hi = 0, upper
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def top_sections(document: Document) -> list[Section]:
    """Sections folded to their first heading level (sub-headings become part of the text)."""
    folded: list[Section] = []
    for section in document.sections:
        key = section.headings[:1]
        if folded and folded[-1].headings == key and key:
            sub = section.headings[-1] if len(section.headings) > 1 else ""
            extra = f"{sub}: {section.text}" if sub else section.text
            folded[-1] = Section(key, folded[-1].text + "\n" + extra)
        else:
            text = section.text
            if len(section.headings) > 1:
                text = f"{section.headings[-1]}: {text}"
            folded.append(Section(key, text))
    return folded


def examples_from_document(document: Document, *, system_prompt: str, answer_token_budget: int,
                           min_answer_words: int, count_tokens: Callable[[str], int]) -> list[dict[str, Any]]:
    """Q&A examples from one post, following the module's documented rule."""
    examples = []
    seen: set[str] = set()
    for section in top_sections(document):
        if len(section.text.split()) < min_answer_words:
            continue
        answer = trim_to_budget(section.text, answer_token_budget, count_tokens)
        if len(answer.split()) < min_answer_words:
            continue
        slug = slugify(section.heading) if section.heading else "introducao"
        rid = f"post-{document.id}-{slug}"
        suffix = 2
        while rid in seen:
            rid, suffix = f"post-{document.id}-{slug}-{suffix}", suffix + 1
        seen.add(rid)
        metadata = {"category": document.category, "source": "corpus", "document": document.id,
                    "heading": section.heading or document.title}
        examples.append(chat_record(rid, system_prompt, section_question(section.heading, document.title),
                                    answer, metadata))
    return examples


def build_from_posts(paths: Iterable[Path | str], **kwargs: Any) -> list[dict[str, Any]]:
    """Examples from every post file named or found in ``paths`` (see :func:`examples_from_document`)."""
    examples = []
    for path in expand_inputs(paths, DOCUMENT_SUFFIXES):
        examples.extend(examples_from_document(parse_document(path), **kwargs))
    return examples


# --------------------------------------------------------------------------- Q&A files


def _stable_id(prefix: str, *parts: str) -> str:
    return f"{prefix}-" + hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:12]


def _pick(row: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in row and row[key] not in (None, ""):
            return row[key]
    return None


def _flat_row(row: dict[str, Any], system_prompt: str, default_category: str, source: str) -> dict[str, Any]:
    """A flat question/answer row as a ChatML example; raises ValueError naming the bad field."""
    question, answer = _pick(row, _QUESTION_KEYS), _pick(row, _ANSWER_KEYS)
    for name, value in (("question", question), ("answer", answer)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"field {name!r}: expected non-empty text, got {value!r}")
    category = _pick(row, _CATEGORY_KEYS) or default_category
    metadata: dict[str, Any] = {"category": str(category).strip(), "source": str(row.get("source") or source)}
    must = row.get("must_include")
    if isinstance(must, str) and must.strip():
        must = [t.strip() for t in must.split(";") if t.strip()]
    if must:
        if not isinstance(must, list):
            raise ValueError(f"field 'must_include': expected a list or ';'-separated text, got {must!r}")
        metadata["must_include"] = must
    rid = str(row.get("id") or _stable_id("qa", question.strip(), answer.strip()))
    return chat_record(rid, system_prompt, question.strip(), answer.strip(), metadata)


def build_from_qa(paths: Iterable[Path | str], *, system_prompt: str, default_category: str = "geral") -> BuildResult:
    """Examples from Q&A files; rows that cannot be converted are returned as rejections."""
    result = BuildResult()
    for path in expand_inputs(paths, QA_SUFFIXES):
        source = f"qa:{path.stem}"
        before = len(result.examples) + len(result.rejected)
        rows = _csv_rows(path) if path.suffix.lower() == ".csv" else _jsonl_rows(path)
        for line, raw, obj, error in rows:
            if error is None:
                if isinstance(obj, dict) and "messages" in obj:
                    if "id" not in obj and isinstance(obj.get("messages"), list):
                        obj = {"id": _stable_id("qa", raw), **obj}
                    result.examples.append(obj)
                    continue
                if not isinstance(obj, dict):
                    error = f"expected a JSON object, got {type(obj).__name__}"
                else:
                    try:
                        result.examples.append(_flat_row(obj, system_prompt, default_category, source))
                        continue
                    except ValueError as exc:
                        error = str(exc)
            result.rejected.append(Rejection(path, line, error, raw))
        if len(result.examples) + len(result.rejected) == before:
            raise DataError(f"{path}: file is empty, expected one question per row")
    return result


def _jsonl_rows(path: Path) -> Iterable[tuple[int, str, Any, str | None]]:
    for row in read_jsonl(path):
        yield row.line, row.raw, row.obj, row.error


def _csv_rows(path: Path) -> Iterable[tuple[int, str, Any, str | None]]:
    text = read_text_file(path)
    if not text.strip():
        return
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if not any(k in header for k in _QUESTION_KEYS) or not any(k in header for k in _ANSWER_KEYS):
        raise DataError(f"{path}:1: CSV header must name a question column (question/pergunta) and an "
                        f"answer column (answer/resposta); found {header}")
    reader.fieldnames = header
    lines = text.splitlines()
    for row in reader:
        line = reader.line_num
        raw = lines[line - 1] if 0 < line <= len(lines) else ""
        if None in row:
            yield line, raw, None, f"more values than the {len(header)} header columns"
            continue
        yield line, raw, {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()}, None
