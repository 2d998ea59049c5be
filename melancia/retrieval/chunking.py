"""Split knowledge documents into chunks that can be retrieved and cited on their own.

Chunks follow the document's sections (heading paths from :func:`melancia.data.documents.parse_document`)
and are cut by size, on sentence boundaries where possible, with a word overlap between
neighbouring pieces of one section. Each chunk keeps the document id, title, heading path and
category, and the text it embeds starts with the title and heading so that a chunk about
"Como calcular" still says what it calculates.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from melancia.data.documents import DOCUMENT_SUFFIXES, Document, parse_document

_SENTENCE_END = re.compile(r"(?<=[.!?:])\s+|\n+")


@dataclass(frozen=True)
class Chunk:
    id: str
    doc_id: str
    title: str
    headings: tuple[str, ...]
    category: str
    text: str
    source: str

    @property
    def heading(self) -> str:
        return " > ".join(self.headings)

    @property
    def embedded_text(self) -> str:
        """What is embedded and lexically indexed: title and heading path give the text its context."""
        context = " > ".join([self.title, *[h for h in self.headings if h != self.title]])
        return f"{context}\n{self.text}"

    def metadata(self) -> dict[str, Any]:
        return {"doc_id": self.doc_id, "title": self.title, "heading": self.heading, "category": self.category,
                "source": self.source}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "headings": list(self.headings)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Chunk:
        return cls(**{**raw, "headings": tuple(raw["headings"])})


def document_paths(folder: Path) -> list[Path]:
    """Knowledge documents under ``folder`` (recursive, sorted)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES)


def content_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def chunk_document(document: Document, *, max_words: int = 160, overlap_words: int = 30) -> list[Chunk]:
    """The chunks of one document, in reading order, with stable ids ``<doc>#<section>.<piece>``."""
    chunks = []
    for number, section in enumerate(document.sections):
        for piece_number, text in enumerate(split_text(section.text, max_words, overlap_words)):
            headings = tuple(section.headings) or (document.title,)
            chunks.append(Chunk(f"{document.id}#{number}.{piece_number}", document.id, document.title, headings,
                                document.category, text, str(document.path)))
    return chunks


def chunk_file(path: Path, **sizes: int) -> list[Chunk]:
    return chunk_document(parse_document(path), **sizes)


def split_text(text: str, max_words: int, overlap_words: int) -> list[str]:
    """Pieces of at most ``max_words`` words, cut after a sentence where possible, overlapping.

    A single sentence longer than ``max_words`` is cut between words.
    """
    sentences = [s for s in _SENTENCE_END.split(text.strip()) if s.strip()]
    words_of = [s.split() for s in sentences]
    pieces: list[list[str]] = []
    current: list[str] = []
    for words in words_of:
        while len(words) > max_words:  # an overlong sentence: cut between words
            if current:
                pieces.append(current)
                current = []
            pieces.append(words[:max_words])
            words = words[max_words - overlap_words:]
        if current and len(current) + len(words) > max_words:
            pieces.append(current)
            current = current[-overlap_words:] if overlap_words else []
            if len(current) + len(words) > max_words:
                current = []
        current = current + words
    if current:
        pieces.append(current)
    return [" ".join(p) for p in pieces]
