"""Rate limits per API key: requests and tokens per minute, in fixed one-minute windows.

:meth:`RateLimiter.check` runs before a request and counts it when allowed; the tokens an answer used
are known only afterwards and are added with :meth:`RateLimiter.add_tokens`, so the token budget refuses
the requests that come after it is spent. A refused request is not counted.

Two backends: :class:`MemoryRateLimiter` for one process, :class:`RedisRateLimiter` so that several API
replicas share one budget per key (the check-and-count is one Lua script, atomic in Redis). Windows are
numbered from the Unix epoch, so replicas agree as long as their clocks do.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

WINDOW_S = 60


@dataclass(frozen=True)
class Limits:
    """The budget of one key for one minute."""

    requests_per_minute: int
    tokens_per_minute: int

    def __post_init__(self) -> None:
        if self.requests_per_minute < 1 or self.tokens_per_minute < 1:
            raise ValueError(f"rate limits must be positive, got {self}")


@dataclass(frozen=True)
class Decision:
    """The answer to one check; ``retry_after_s`` is 0 when allowed, else whole seconds until the window ends."""

    allowed: bool
    retry_after_s: int
    remaining_requests: int
    remaining_tokens: int
    reason: str | None = None
    """Why it was refused: "requests per minute" or "tokens per minute"."""


class RateLimiter(Protocol):
    def check(self, key: str, limits: Limits) -> Decision:
        """Count this request if the current minute's budget allows it (atomically); refuse it otherwise."""
        ...

    def add_tokens(self, key: str, tokens: int) -> None:
        """Add the tokens an answer used to the current minute of ``key``."""
        ...


def window_of(now: float) -> tuple[int, int]:
    """The current window's number and the whole seconds until it ends (at least 1)."""
    window = int(now // WINDOW_S)
    return window, max(1, math.ceil((window + 1) * WINDOW_S - now))


def _decide(limits: Limits, requests: int, tokens: int, retry_after_s: int) -> Decision:
    """The decision for a window where ``requests`` and ``tokens`` are already used (allowed: counts one more)."""
    remaining_tokens = max(0, limits.tokens_per_minute - tokens)
    if requests >= limits.requests_per_minute:
        return Decision(False, retry_after_s, 0, remaining_tokens, "requests per minute")
    if tokens >= limits.tokens_per_minute:
        return Decision(False, retry_after_s, limits.requests_per_minute - requests, 0, "tokens per minute")
    return Decision(True, 0, limits.requests_per_minute - requests - 1, remaining_tokens, None)


class MemoryRateLimiter:
    """Per-process limits; thread-safe; windows older than the current one are dropped."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._usage: dict[str, list[int]] = {}  # key -> [window, requests, tokens]
        self._window = -1

    def check(self, key: str, limits: Limits) -> Decision:
        with self._lock:
            usage, retry_after_s = self._current(key)
            decision = _decide(limits, usage[1], usage[2], retry_after_s)
            if decision.allowed:
                usage[1] += 1
            return decision

    def add_tokens(self, key: str, tokens: int) -> None:
        if tokens <= 0:
            return
        with self._lock:
            self._current(key)[0][2] += int(tokens)

    def _current(self, key: str) -> tuple[list[int], int]:
        """This window's usage of ``key`` (created, and stale windows dropped, as needed); caller holds the lock."""
        window, retry_after_s = window_of(self._clock())
        if window != self._window:
            self._window = window
            self._usage = {name: usage for name, usage in self._usage.items() if usage[0] == window}
        usage = self._usage.get(key)
        if usage is None or usage[0] != window:
            usage = self._usage[key] = [window, 0, 0]
        return usage, retry_after_s


# KEYS: requests counter, tokens counter. ARGV: requests per minute, tokens per minute, expiry seconds.
# Returns {allowed (0/1), requests used before this one, tokens used}.
_CHECK_SCRIPT = """
local requests = tonumber(redis.call('GET', KEYS[1]) or '0')
local tokens = tonumber(redis.call('GET', KEYS[2]) or '0')
if requests >= tonumber(ARGV[1]) or tokens >= tonumber(ARGV[2]) then
  return {0, requests, tokens}
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return {1, requests, tokens}
"""


class RedisRateLimiter:
    """Limits shared by every replica using the same Redis; counters expire shortly after their window."""

    def __init__(self, client: Any, prefix: str = "melancia:rl:", clock: Callable[[], float] = time.time) -> None:
        self.client, self.prefix, self._clock = client, prefix, clock
        self._check = client.register_script(_CHECK_SCRIPT)

    def _keys(self, key: str, window: int) -> tuple[str, str]:
        # The {hash tag} keeps both counters of a key in one Redis Cluster slot, as the script requires.
        base = f"{self.prefix}{{{key}}}:{window}"
        return f"{base}:requests", f"{base}:tokens"

    def check(self, key: str, limits: Limits) -> Decision:
        window, retry_after_s = window_of(self._clock())
        # The script applies _decide's rule atomically and returns the usage it saw before counting.
        _, requests, tokens = self._check(
            keys=list(self._keys(key, window)),
            args=[limits.requests_per_minute, limits.tokens_per_minute, retry_after_s + WINDOW_S])
        return _decide(limits, int(requests), int(tokens), retry_after_s)

    def add_tokens(self, key: str, tokens: int) -> None:
        if tokens <= 0:
            return
        window, retry_after_s = window_of(self._clock())
        tokens_key = self._keys(key, window)[1]
        pipe = self.client.pipeline(transaction=True)
        pipe.incrby(tokens_key, int(tokens))
        pipe.expire(tokens_key, retry_after_s + WINDOW_S)
        pipe.execute()


def redis_client(url: str) -> Any:
    """A ``redis.Redis`` for ``redis://``, ``rediss://`` or ``unix://`` URLs (the package is imported only here)."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"not a Redis URL: {url!r} (expected redis://host:6379/0)")
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30)


def limiter_from_url(redis_url: str | None) -> RateLimiter:
    """In-process limits without a URL; limits shared through Redis with one."""
    return MemoryRateLimiter() if not redis_url else RedisRateLimiter(redis_client(redis_url))
