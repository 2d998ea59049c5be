"""``melancia data dedupe``: exact and near-duplicate removal, and train/eval leak checks.

Exact duplicates share the same normalised text (case, accents, punctuation and spacing ignored).
Near duplicates are found with MinHash over character 5-grams of that normalised text and an LSH
index (``datasketch``), so the cost grows linearly with the dataset instead of quadratically.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from datasketch import MinHash, MinHashLSH

from melancia.data import schema

NUM_PERM = 128
SHINGLE = 5


@dataclass
class Duplicate:
    record: dict[str, Any]
    of_id: str
    kind: str  # "exact" | "near" | "leak"

    def __str__(self) -> str:
        return f"{self.record['id']}: {self.kind} duplicate of {self.of_id}"


def minhash(text: str) -> MinHash:
    """MinHash signature of the character 5-grams of the normalised text."""
    norm = schema.normalise(text)
    grams = {norm[i:i + SHINGLE] for i in range(max(1, len(norm) - SHINGLE + 1))}
    signature = MinHash(num_perm=NUM_PERM, seed=1)
    signature.update_batch([g.encode() for g in grams])
    return signature


def conversation_text(record: dict[str, Any]) -> str:
    """All user and assistant turns: what makes two examples teach the same thing."""
    return "\n".join(m["content"] for m in record["messages"] if m["role"] != "system")


def user_turns(record: dict[str, Any]) -> list[str]:
    return [m["content"] for m in record["messages"] if m["role"] == "user"]


def _side(record: dict[str, Any], role: str) -> str:
    return "\n".join(m["content"] for m in record["messages"] if m["role"] == role)


def dedupe(records: Iterable[dict[str, Any]], threshold: float = 0.8) -> tuple[list[dict[str, Any]], list[Duplicate]]:
    """Keep the first of each group of duplicates, in input order.

    Two examples are duplicates when their normalised conversations are equal (exact), or when both
    their questions and their answers are near duplicates (near). A paraphrased question with the
    same answer is therefore new data, and so is a similar question with a different answer (the same
    calculation with other numbers).
    """
    kept: list[dict[str, Any]] = []
    removed: list[Duplicate] = []
    exact: dict[str, str] = {}
    answers: dict[str, MinHash] = {}
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    for record in records:
        norm = schema.normalise(conversation_text(record))
        if norm in exact:
            removed.append(Duplicate(record, exact[norm], "exact"))
            continue
        question_sig, answer_sig = minhash(_side(record, "user")), minhash(_side(record, "assistant"))
        similar = sorted(rid for rid in lsh.query(question_sig) if answers[rid].jaccard(answer_sig) >= threshold)
        if similar:
            removed.append(Duplicate(record, similar[0], "near"))
            continue
        exact[norm] = record["id"]
        answers[record["id"]] = answer_sig
        lsh.insert(record["id"], question_sig)
        kept.append(record)
    return kept, removed


def remove_leaks(train: Iterable[dict[str, Any]], heldout: Iterable[dict[str, Any]],
                 threshold: float = 0.8) -> tuple[list[dict[str, Any]], list[Duplicate]]:
    """Drop training examples any of whose questions equals or nearly equals a held-out question."""
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    exact: dict[str, str] = {}
    for record in heldout:
        for i, turn in enumerate(user_turns(record)):
            exact.setdefault(schema.normalise(turn), record["id"])
            lsh.insert(f"{record['id']}#{i}", minhash(turn))
    kept, leaked = [], []
    for record in train:
        hit = None
        for turn in user_turns(record):
            hit = exact.get(schema.normalise(turn))
            if hit is None:
                similar = lsh.query(minhash(turn))
                hit = sorted(similar)[0].rsplit("#", 1)[0] if similar else None
            if hit:
                break
        if hit:
            leaked.append(Duplicate(record, hit, "leak"))
        else:
            kept.append(record)
    return kept, leaked


def near_duplicate_groups(records: list[dict[str, Any]], threshold: float = 0.8) -> list[int]:
    """Group index of each record: records whose questions are near duplicates share a group."""
    parent = list(range(len(records)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    for i, record in enumerate(records):
        signature = minhash(schema.question(record))
        for other in lsh.query(signature):
            parent[find(int(other))] = find(i)
        lsh.insert(str(i), signature)
    return [find(i) for i in range(len(records))]
