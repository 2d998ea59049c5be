"""Parse knowledge documents (Markdown with front matter, HTML, plain text) into sections.

Both the dataset builder (sections become Q&A examples) and the retrieval index (sections become
chunks) read documents through :func:`parse_document`, so they agree on titles, categories and
heading paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt

from melancia.data.io import DataError, read_text_file

DOCUMENT_SUFFIXES = (".md", ".markdown", ".html", ".htm", ".txt")
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.DOTALL)


@dataclass
class Section:
    """A run of text under one heading path (e.g. ``["ACOS", "Como calcular"]``)."""

    headings: list[str]
    text: str

    @property
    def heading(self) -> str:
        return self.headings[-1] if self.headings else ""


@dataclass
class Document:
    id: str
    path: Path
    title: str
    category: str
    tags: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.sections)


def parse_document(path: Path, default_category: str = "geral") -> Document:
    """Read one document; the id is the file name without suffix."""
    text = read_text_file(path)
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        meta, sections = _parse_html(text)
    elif suffix in (".md", ".markdown"):
        meta, body = _front_matter(path, text)
        sections = _markdown_sections(body)
    elif suffix == ".txt":
        meta, sections = {}, [Section([], _clean(text))] if text.strip() else []
    else:
        raise DataError(f"{path}: unsupported document type {suffix!r}; expected one of {DOCUMENT_SUFFIXES}")
    title = str(meta.get("title") or "").strip()
    if not title and sections and sections[0].headings:
        title = sections[0].headings[0]
    title = title or path.stem.replace("-", " ").replace("_", " ")
    sections = [_without_title(s, title) for s in sections if s.text.strip()]
    tags = meta.get("tags") or []
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",") if t.strip()]
    return Document(id=path.stem, path=path, title=title,
                    category=str(meta.get("category") or default_category).strip(),
                    tags=[str(t) for t in tags], sections=sections)


def _without_title(section: Section, title: str) -> Section:
    """Drop the document's own title (the ``#`` heading) from heading paths."""
    headings = list(section.headings)
    if headings and headings[0].strip().casefold() == title.casefold():
        headings = headings[1:]
    return Section(headings, section.text)


def _front_matter(path: Path, text: str) -> tuple[dict[str, Any], str]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 2}" if mark else ""
        raise DataError(f"{path}{line}: invalid front matter ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path}:2: front matter must be a mapping (title, category, tags)")
    return meta, text[match.end():]


def _markdown_sections(body: str) -> list[Section]:
    tokens = MarkdownIt("commonmark").enable("table").parse(body)
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    blocks: list[str] = []
    list_depth = 0
    row: list[str] | None = None

    def flush() -> None:
        if blocks:
            sections.append(Section([h for _, h in path], "\n".join(blocks)))
            blocks.clear()

    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "heading_open":
            flush()
            level = int(tok.tag[1])
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, _inline_text(tokens[i + 1])))
            i += 3
            continue
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            list_depth += 1
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            list_depth -= 1
        elif tok.type == "tr_open":
            row = []
        elif tok.type == "tr_close" and row is not None:
            blocks.append(" | ".join(row))
            row = None
        elif tok.type == "inline" and row is not None:
            row.append(_inline_text(tok))
        elif tok.type == "inline":
            line = _inline_text(tok)
            if line:
                blocks.append(f"- {line}" if list_depth else line)
        elif tok.type in ("fence", "code_block") and tok.content.strip():
            blocks.append(tok.content.strip())
        i += 1
    flush()
    return sections


def _inline_text(token: Any) -> str:
    parts = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return _clean("".join(parts))


def _parse_html(text: str) -> tuple[dict[str, Any], list[Section]]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "nav", "footer", "header"]):
        tag.decompose()
    meta: dict[str, Any] = {}
    if soup.title and soup.title.string:
        meta["title"] = _clean(soup.title.string)
    for name, key in (("category", "category"), ("keywords", "tags")):
        tag = soup.find("meta", attrs={"name": name})
        if tag and tag.get("content"):
            meta[key] = tag["content"]
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    blocks: list[str] = []
    for el in soup.find_all(["h1", "h2", "h3", "h4", "p", "li", "pre"]):
        if el.name.startswith("h"):
            if blocks:
                sections.append(Section([h for _, h in path], "\n".join(blocks)))
                blocks = []
            level = int(el.name[1])
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, _clean(el.get_text(" "))))
        elif el.name == "li" or not el.find_parent("li"):
            line = _clean(el.get_text(" "))
            if line:
                blocks.append(f"- {line}" if el.name == "li" else line)
    if blocks:
        sections.append(Section([h for _, h in path], "\n".join(blocks)))
    return meta, sections


def _clean(text: str) -> str:
    return re.sub(r"[ \t\r\f\v]+", " ", text.replace("\u00a0", " ")).strip()
