"""Counters per provider and per A/B arm: requests, errors, fallbacks, latency, tokens and cost.

Kept in memory by the router (thread-safe) and served by the predictor and the API; latency
percentiles come from the most recent answers.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RECENT_LATENCIES = 1000


@dataclass
class Counter:
    requests: int = 0
    successes: int = 0
    errors: int = 0
    fallbacks: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_LATENCIES))

    def as_dict(self) -> dict[str, Any]:
        recent = list(self.latencies)
        return {"requests": self.requests, "successes": self.successes, "errors": self.errors,
                "fallbacks": self.fallbacks, "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "estimated_cost": round(self.cost, 6),
                "error_rate": round(self.errors / self.requests, 4) if self.requests else 0.0,
                "latency_p50_s": round(float(np.percentile(recent, 50)), 4) if recent else None,
                "latency_p95_s": round(float(np.percentile(recent, 95)), 4) if recent else None}


class RouterStats:
    def __init__(self) -> None:
        self._providers: dict[str, Counter] = defaultdict(Counter)
        self._arms: dict[str, Counter] = defaultdict(Counter)
        self._lock = threading.Lock()

    def attempt_failed(self, provider: str, *, fell_back: bool) -> None:
        """One call to ``provider`` failed (``fell_back``: another provider was tried next)."""
        with self._lock:
            counter = self._providers[provider]
            counter.requests += 1
            counter.errors += 1
            counter.fallbacks += int(fell_back)

    def answered(self, provider: str, arm: str | None, *, latency_s: float, input_tokens: int, output_tokens: int,
                 cost: float, fell_back: bool) -> None:
        """``provider`` answered a request of ``arm`` (``fell_back``: after another provider failed)."""
        with self._lock:
            counters = [self._providers[provider]] + ([self._arms[arm]] if arm else [])
            for counter in counters:
                counter.requests += 1
                counter.successes += 1
                counter.input_tokens += input_tokens
                counter.output_tokens += output_tokens
                counter.cost += cost
                counter.latencies.append(latency_s)
            if arm:
                self._arms[arm].fallbacks += int(fell_back)

    def unanswered(self, arm: str | None) -> None:
        """No provider of the chain could answer."""
        if arm:
            with self._lock:
                self._arms[arm].requests += 1
                self._arms[arm].errors += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"providers": {name: c.as_dict() for name, c in sorted(self._providers.items())},
                    "arms": {name: c.as_dict() for name, c in sorted(self._arms.items())}}
