"""Response cache: an answer is reused for the same normalised question, parameters and model, until its TTL.

The key is exact (no semantic matching): the question is normalised (Unicode NFC, case folded, whitespace
collapsed, trailing ``?!.`` dropped) so that "O que é ACOS?" and "  o que é acos " share one entry.
Values are JSON objects; both backends hand back a fresh copy, so callers may change what they get.
Counting hits and misses is the caller's business.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from melancia.api.limits import redis_client

_SPACES = re.compile(r"\s+")
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def normalise_question(question: str) -> str:
    """The question as the cache compares it."""
    text = unicodedata.normalize("NFC", unicodedata.normalize("NFC", question).casefold())
    return _SPACES.sub(" ", text).strip().rstrip("?!. ").strip()


def cache_key(question: str, params: Mapping[str, Any], model: str) -> str:
    """sha256 hex of the normalised question, the parameters (sorted JSON) and the model."""
    payload = json.dumps({"question": normalise_question(question), "params": dict(params), "model": model},
                         sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


class ResponseCache(Protocol):
    def get(self, key: str) -> dict | None:
        """The cached value, or None when absent or expired."""
        ...

    def set(self, key: str, value: dict, ttl_s: float) -> None:
        """Keep ``value`` for ``ttl_s`` seconds (0 or less: do not keep it)."""
        ...

    def clear(self) -> int:
        """Remove every entry of this cache; returns how many there were."""
        ...

    def size(self) -> int:
        """Entries currently held (expired ones not counted)."""
        ...


class MemoryCache:
    """Per-process cache with TTL and least-recently-used eviction beyond ``max_entries``; thread-safe."""

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be positive, got {max_entries}")
        self.max_entries, self._clock = max_entries, clock
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()  # key -> (expires at, JSON)
        self._lock = threading.Lock()

    def get(self, key: str) -> dict | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return json.loads(entry[1])

    def set(self, key: str, value: dict, ttl_s: float) -> None:
        text = json.dumps(value, ensure_ascii=False)  # same contract as Redis: JSON only, stored as a copy
        with self._lock:
            if ttl_s <= 0:
                self._entries.pop(key, None)
                return
            self._entries[key] = (self._clock() + ttl_s, text)
            self._entries.move_to_end(key)
            if len(self._entries) > self.max_entries:
                self._drop_expired()
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> int:
        with self._lock:
            self._drop_expired()
            removed = len(self._entries)
            self._entries.clear()
            return removed

    def size(self) -> int:
        with self._lock:
            self._drop_expired()
            return len(self._entries)

    def _drop_expired(self) -> None:
        now = self._clock()
        for key in [key for key, (expires_at, _) in self._entries.items() if expires_at <= now]:
            del self._entries[key]


class RedisCache:
    """Cache shared by every replica using the same Redis; Redis expires the entries (millisecond TTLs)."""

    def __init__(self, client: Any, prefix: str = "melancia:cache:") -> None:
        self.client, self.prefix = client, prefix

    def get(self, key: str) -> dict | None:
        raw = self.client.get(self.prefix + key)
        return None if raw is None else json.loads(raw)

    def set(self, key: str, value: dict, ttl_s: float) -> None:
        if ttl_s <= 0:
            self.client.delete(self.prefix + key)
            return
        self.client.set(self.prefix + key, json.dumps(value, ensure_ascii=False), px=max(1, round(ttl_s * 1000)))

    def clear(self) -> int:
        """Delete this cache's keys only (SCAN + DEL on the prefix; never FLUSHDB)."""
        removed, batch = 0, []
        for name in self.client.scan_iter(match=self._pattern(), count=500):
            batch.append(name)
            if len(batch) >= 500:
                removed += self.client.delete(*batch)
                batch = []
        if batch:
            removed += self.client.delete(*batch)
        return removed

    def size(self) -> int:
        return sum(1 for _ in self.client.scan_iter(match=self._pattern(), count=500))

    def _pattern(self) -> str:
        return _GLOB_SPECIAL.sub(r"\\\1", self.prefix) + "*"


def cache_from_url(redis_url: str | None, max_entries: int = 10_000) -> ResponseCache:
    """An in-process cache without a URL; a cache shared through Redis with one (``max_entries`` unused there)."""
    return MemoryCache(max_entries) if not redis_url else RedisCache(redis_client(redis_url))
