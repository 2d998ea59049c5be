"""``melancia data validate``: check ChatML files row by row and quarantine what is broken.

Every rejected row keeps its file, line, reasons and raw text, so the author can fix it at the
source; valid rows are never dropped because a neighbour is broken.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from melancia.data import schema
from melancia.data.io import DataError, Row, expand_inputs, read_jsonl, write_jsonl
from melancia.data.tokens import TokenCounter


@dataclass
class Rejection:
    path: Path
    line: int
    reason: str
    raw: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"

    def to_record(self) -> dict[str, Any]:
        return {"file": str(self.path), "line": self.line, "reason": self.reason, "raw": self.raw}


@dataclass
class ValidationReport:
    """Valid examples (in input order) and rejected rows."""

    valid: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected


def validate_files(paths: Iterable[Path | str], *, count_tokens: TokenCounter | None = None,
                   max_tokens: int | None = None) -> ValidationReport:
    """Validate every ``.jsonl`` file named or found in ``paths``.

    Checks the schema (:func:`melancia.data.schema.problems`), encoding, length in tokens (when a
    counter is given) and that ids are unique across all files.
    """
    report = ValidationReport(files=expand_inputs(paths, (".jsonl",)))
    rows: list[Row] = []
    for path in report.files:
        found = list(read_jsonl(path))
        if not found:
            raise DataError(f"{path}: file is empty, expected one JSON example per line")
        rows += found
    _check(rows, report, count_tokens, max_tokens)
    return report


def validate_records(records: list[dict[str, Any]], *, count_tokens: TokenCounter | None = None,
                     max_tokens: int | None = None) -> ValidationReport:
    """The same checks for examples built in memory; a rejection points at ``<built:ID>``."""
    rows = [Row(Path(f"<built:{r.get('id', '?') if isinstance(r, dict) else '?'}>"), i, json.dumps(r, ensure_ascii=False), obj=r)
            for i, r in enumerate(records, start=1)]
    report = ValidationReport()
    _check(rows, report, count_tokens, max_tokens)
    return report


def _check(rows: list[Row], report: ValidationReport, count_tokens: TokenCounter | None, max_tokens: int | None) -> None:
    first_seen: dict[str, str] = {}
    for row in rows:
        reasons = [row.error] if row.error else schema.problems(row.obj)
        if not reasons and count_tokens is not None and max_tokens is not None:
            length = count_tokens(row.obj["messages"])
            if length > max_tokens:
                reasons.append(f"too long: {length} tokens, at most {max_tokens}")
        if not reasons:
            rid = row.obj["id"]
            if rid in first_seen:
                reasons.append(f"duplicate id {rid!r} (first at {first_seen[rid]})")
            else:
                first_seen[rid] = row.where
        if reasons:
            report.rejected.append(Rejection(row.path, row.line, "; ".join(reasons), row.raw))
        else:
            report.valid.append(row.obj)


def write_quarantine(path: Path, rejected: list[Rejection]) -> None:
    """The rejected rows with their reasons, one JSON object per line."""
    write_jsonl(path, (r.to_record() for r in rejected))


def summary_line(report: ValidationReport) -> str:
    return json.dumps({"files": len(report.files), "valid": len(report.valid), "rejected": len(report.rejected)})
