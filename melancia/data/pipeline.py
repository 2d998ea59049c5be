"""The whole data stage: posts + Q&A files -> validated, deduplicated, leak-free splits.

Outputs in ``out_dir`` (default ``MELANCIA_HOME/datasets``): ``train.jsonl``, ``valid.jsonl``
(eval loss during training), ``heldout.jsonl`` (the evaluation gate's set), ``quarantine.jsonl``
(rejected rows with file, line and reason), ``removed.jsonl`` (duplicates and leaks, with what
they duplicate), ``stats.json``, ``stats.png`` and ``manifest.json``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from melancia.config import to_dict
from melancia.data import build, dedupe, schema, split, stats, validate
from melancia.data.config import DataConfig
from melancia.data.io import DataError, atomic_write_text, write_jsonl
from melancia.data.tokens import chat_counter, text_counter
from melancia.models.loading import load_tokenizer
from melancia.settings import get_settings

SYNTHETIC = schema.SYNTHETIC_SOURCE


class RejectedRowsError(DataError):
    """Some input rows were rejected and the caller did not allow it."""


@dataclass
class DataSummary:
    out_dir: Path
    splits: dict[str, list[dict[str, Any]]]
    rejected: list[validate.Rejection] = field(default_factory=list)
    removed: list[dedupe.Duplicate] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        return self.out_dir / f"{name}.jsonl"


def build_datasets(config: DataConfig, *, tokenizer: Any = None, allow_rejects: bool = False) -> DataSummary:
    """Run the data stage described in the module docstring and return what it wrote."""
    if tokenizer is None:
        tokenizer = load_tokenizer(config.tokenizer)
    count_chat, count_text = chat_counter(tokenizer), text_counter(tokenizer)
    out_dir = Path(config.out_dir or get_settings().paths.datasets)

    qa = build.build_from_qa(config.qa_paths, system_prompt=config.system_prompt)
    posts = []
    if config.corpus_dir is not None:
        posts = build.build_from_posts([config.corpus_dir], system_prompt=config.system_prompt,
                                       answer_token_budget=config.answer_token_budget,
                                       min_answer_words=config.min_answer_words, count_tokens=count_text)
    pool = validate.validate_records(qa.examples + posts, count_tokens=count_chat, max_tokens=config.max_tokens)
    heldout = validate.validate_files(config.heldout_paths, count_tokens=count_chat, max_tokens=config.max_tokens)
    for record in [r for r in heldout.valid if r["metadata"]["source"] == SYNTHETIC]:
        heldout.valid.remove(record)
        heldout.rejected.append(validate.Rejection(Path(f"<heldout:{record['id']}>"), 0,
                                                   "synthetic examples may never be in the held-out split", ""))
    rejected = qa.rejected + pool.rejected + heldout.rejected
    if rejected and not allow_rejects:
        raise RejectedRowsError("\n".join(str(r) for r in rejected[:20]) +
                                (f"\n... and {len(rejected) - 20} more" if len(rejected) > 20 else "") +
                                "\n(fix the rows above, or allow rejects to continue without them)")
    train_ids = {r["id"] for r in pool.valid}
    clash = sorted(train_ids & {r["id"] for r in heldout.valid})
    if clash:
        raise DataError(f"ids used in both training and held-out files: {clash[:10]}")

    unique, removed = dedupe.dedupe(pool.valid, config.near_duplicate_threshold)
    clean, leaks = dedupe.remove_leaks(unique, heldout.valid, config.near_duplicate_threshold)
    synthetic = [r for r in clean if r["metadata"]["source"] == SYNTHETIC]
    curated = [r for r in clean if r["metadata"]["source"] != SYNTHETIC]
    train, valid = split.split(curated, config.valid_fraction, config.seed, config.near_duplicate_threshold)
    splits = {"train": train + synthetic, "valid": valid, "heldout": heldout.valid}
    summary = DataSummary(out_dir, splits, rejected, removed + leaks)
    summary.stats = {name: stats.describe(records, count_chat) for name, records in splits.items()}
    _write(summary, config)
    return summary


def _write(summary: DataSummary, config: DataConfig) -> None:
    out = summary.out_dir
    for name, records in summary.splits.items():
        write_jsonl(summary.path(name), records)
    validate.write_quarantine(out / "quarantine.jsonl", summary.rejected)
    write_jsonl(out / "removed.jsonl", ({"id": d.record["id"], "kind": d.kind, "of": d.of_id,
                                          "question": schema.question(d.record)} for d in summary.removed))
    stats.write(summary.stats, out)
    manifest = {
        "config": to_dict(config),
        "counts": {name: len(records) for name, records in summary.splits.items()},
        "rejected": len(summary.rejected),
        "removed": {kind: sum(d.kind == kind for d in summary.removed) for kind in ("exact", "near", "leak")},
        "sha256": {name: hashlib.sha256(summary.path(name).read_bytes()).hexdigest() for name in summary.splits},
    }
    atomic_write_text(out / "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
