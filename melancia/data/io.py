"""Reading and writing dataset files safely.

Readers report problems with the file and line they concern; writers go through a temporary file
and an atomic rename, so an interrupted command never leaves a half-written dataset behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from melancia.errors import MelanciaError


class DataError(MelanciaError, ValueError):
    """A dataset input cannot be used at all (missing, a directory, empty, unreadable)."""


@dataclass
class Row:
    """One line of a JSONL file: its parsed object, or why it could not be parsed."""

    path: Path
    line: int
    raw: str
    obj: Any = None
    error: str | None = None

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def expand_inputs(paths: Iterable[Path | str], suffixes: tuple[str, ...]) -> list[Path]:
    """Files named directly, plus files with ``suffixes`` found (recursively) in named folders.

    A missing path or a folder without any matching file is an error, never silently skipped.
    """
    files: list[Path] = []
    for item in paths:
        path = Path(item)
        if not path.exists():
            raise DataError(f"{path}: no such file or directory")
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                raise DataError(f"{path}: directory holds no {'/'.join(suffixes)} files")
            files.extend(found)
        else:
            files.append(path)
    return files


def read_text_file(path: Path) -> str:
    """Whole file as UTF-8 text, with a clear message for directories and other encodings."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a file")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 (byte {exc.start}); save the file as UTF-8") from None


def read_jsonl(path: Path) -> Iterator[Row]:
    """Rows of a JSONL file with 1-based line numbers; blank lines are skipped.

    Lines that are not UTF-8 or not JSON come back as rows with ``error`` set, so one bad line never
    hides the good ones around it.
    """
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a .jsonl file")
    with path.open("rb") as handle:
        for number, raw_bytes in enumerate(handle, start=1):
            if number == 1 and raw_bytes.startswith(b"\xef\xbb\xbf"):
                raw_bytes = raw_bytes[3:]
            try:
                raw = raw_bytes.decode("utf-8")
            except UnicodeDecodeError as exc:
                text = raw_bytes.decode("utf-8", errors="replace").rstrip("\r\n")
                yield Row(path, number, text, error=f"not valid UTF-8 (byte {exc.start} of the line)")
                continue
            raw = raw.rstrip("\r\n")
            if not raw.strip():
                continue
            try:
                yield Row(path, number, raw, obj=json.loads(raw))
            except json.JSONDecodeError as exc:
                yield Row(path, number, raw, error=f"malformed JSON ({exc.msg} at column {exc.colno})")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file in the same folder and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Binary twin of :func:`atomic_write_text` (plots, archives)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dumps_jsonl(records: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write records atomically; returns how many were written."""
    records = list(records)
    atomic_write_text(path, dumps_jsonl(records))
    return len(records)


def load_examples(path: Path) -> list[dict[str, Any]]:
    """Records of a JSONL file that must be entirely well-formed (e.g. a split we wrote)."""
    records = []
    for row in read_jsonl(path):
        if row.error:
            raise DataError(f"{row.where}: {row.error}")
        records.append(row.obj)
    return records
