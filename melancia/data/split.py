"""``melancia data split``: deterministic, category-stratified, leak-free splits.

Examples whose questions are near duplicates form a group that always lands on one side, so a
paraphrase in training never answers a validation question. The same seed and data always give
the same split.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

from melancia.data import schema
from melancia.data.dedupe import near_duplicate_groups


def split(records: list[dict[str, Any]], fraction: float, seed: int = 42,
          threshold: float = 0.8) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(kept, held) where ``held`` has about ``fraction`` of each category (at least one when the
    category has two or more examples and ``fraction`` > 0). Both keep input order."""
    if not records or fraction <= 0:
        return list(records), []
    groups = near_duplicate_groups(records, threshold)
    by_category: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for index, (record, group) in enumerate(zip(records, groups, strict=True)):
        by_category[schema.category(record)][group].append(index)
    held: set[int] = set()
    for category in sorted(by_category):
        members = by_category[category]
        total = sum(len(v) for v in members.values())
        target = round(total * fraction)
        if total >= 2:
            target = max(1, target)
        order = sorted(members, key=lambda g: records[members[g][0]]["id"])
        random.Random(f"{seed}:{category}").shuffle(order)
        taken = 0
        for group in order:
            if taken >= target:
                break
            if taken + len(members[group]) > target and taken > 0:
                continue
            held.update(members[group])
            taken += len(members[group])
    kept = [r for i, r in enumerate(records) if i not in held]
    return kept, [r for i, r in enumerate(records) if i in held]
