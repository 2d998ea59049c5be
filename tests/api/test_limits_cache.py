"""Rate limits and the response cache: memory backends on a fake clock, Redis backends on a real redis-server."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from melancia.api.cache import MemoryCache, RedisCache, cache_from_url, cache_key, normalise_question
from melancia.api.limits import Decision, Limits, MemoryRateLimiter, RedisRateLimiter, limiter_from_url, window_of


class Clock:
    """A settable clock, starting 10 s into a one-minute window."""

    def __init__(self, now: float = 1_000 * 60 + 10.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- rate limits in memory ------------------------------------------------------------------------------------

def test_window_arithmetic() -> None:
    assert window_of(120.0) == (2, 60)
    assert window_of(130.2) == (2, 50)
    assert window_of(179.5) == (2, 1)
    assert window_of(179.999) == (2, 1)


def test_request_limit_refuses_with_retry_after_then_next_window_allows() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    limits = Limits(requests_per_minute=3, tokens_per_minute=1_000)

    decisions = [limiter.check("k", limits) for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, True]
    assert [d.remaining_requests for d in decisions] == [2, 1, 0]
    assert decisions[0] == Decision(True, 0, 2, 1_000, None)

    clock.now += 15.5  # 25.5 s into the window: 34.5 s left -> 35
    refused = limiter.check("k", limits)
    assert refused == Decision(False, 35, 0, 1_000, "requests per minute")
    assert limiter.check("k", limits).allowed is False  # refusals are not counted ...

    clock.now += 35  # ... and the next window starts afresh
    assert limiter.check("k", limits) == Decision(True, 0, 2, 1_000, None)


def test_token_limit_enforced_after_add_tokens() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    limits = Limits(requests_per_minute=100, tokens_per_minute=500)

    assert limiter.check("k", limits).remaining_tokens == 500
    limiter.add_tokens("k", 300)
    assert limiter.check("k", limits).remaining_tokens == 200
    limiter.add_tokens("k", 250)  # the answer overshoots: counted in full
    refused = limiter.check("k", limits)
    assert refused.allowed is False and refused.reason == "tokens per minute" and refused.remaining_tokens == 0
    assert refused.retry_after_s == 50 and refused.remaining_requests == 98
    limiter.add_tokens("k", 0)
    limiter.add_tokens("k", -5)

    clock.now += 50
    assert limiter.check("k", limits) == Decision(True, 0, 99, 500, None)


def test_keys_are_independent_and_old_windows_dropped() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    limits = Limits(1, 10)
    assert limiter.check("a", limits).allowed and not limiter.check("a", limits).allowed
    assert limiter.check("b", limits).allowed
    limiter.add_tokens("c", 99)
    assert not limiter.check("c", limits).allowed and limiter.check("d", limits).allowed
    assert len(limiter._usage) == 4

    clock.now += 60
    assert limiter.check("a", limits).allowed
    assert list(limiter._usage) == ["a"]


def test_memory_limiter_is_thread_safe() -> None:
    limiter = MemoryRateLimiter(Clock())
    limits = Limits(requests_per_minute=500, tokens_per_minute=10**9)
    allowed: list[bool] = []

    def hammer() -> None:
        allowed.extend(limiter.check("k", limits).allowed for _ in range(100))

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 500 and len(allowed) == 800


def test_limits_must_be_positive_and_url_picks_the_backend() -> None:
    with pytest.raises(ValueError, match="positive"):
        Limits(0, 10)
    assert isinstance(limiter_from_url(None), MemoryRateLimiter)
    assert isinstance(cache_from_url(""), MemoryCache)
    with pytest.raises(ValueError, match="not a Redis URL"):
        limiter_from_url("http://localhost:6379")


# -- response cache in memory -----------------------------------------------------------------------------------

def test_cache_key_normalises_the_question_only() -> None:
    params = {"tier": "free", "max_tokens": 256}
    base = cache_key("O que é ACOS?", params, "melancia-1b")
    assert cache_key("  o que é acos ", params, "melancia-1b") == base
    assert cache_key("O QUE\tÉ\n ACOS ?!", {"max_tokens": 256, "tier": "free"}, "melancia-1b") == base
    assert cache_key("O que e\u0301 ACOS?", params, "melancia-1b") == base  # decomposed é -> NFC
    assert len(base) == 64 and int(base, 16) >= 0

    assert cache_key("O que é ROAS?", params, "melancia-1b") != base
    assert cache_key("O que é ACOS?", {"tier": "premium", "max_tokens": 256}, "melancia-1b") != base
    assert cache_key("O que é ACOS?", {**params, "temperature": 0.2}, "melancia-1b") != base
    assert cache_key("O que é ACOS?", params, "gpt-4o-mini") != base
    assert cache_key("O que é ACOS", params, "melancia-1b") == base
    assert cache_key("O que é. ACOS?", params, "melancia-1b") != base  # only trailing punctuation goes
    assert normalise_question("  Olá,   MUNDO!!! ") == "olá, mundo"


def test_memory_cache_ttl_expiry() -> None:
    clock = Clock(0.0)
    cache = MemoryCache(clock=clock)
    cache.set("k", {"answer": "42", "sources": ["a"]}, ttl_s=10)
    got = cache.get("k")
    assert got == {"answer": "42", "sources": ["a"]}
    got["answer"] = "changed"
    assert cache.get("k")["answer"] == "42"  # callers get copies

    clock.now = 9.9
    assert cache.get("k") is not None and cache.size() == 1
    clock.now = 10.0
    assert cache.get("k") is None and cache.size() == 0

    cache.set("k", {"a": 1}, ttl_s=5)
    cache.set("k", {"a": 2}, ttl_s=0)  # not kept, and the old entry goes too
    assert cache.get("k") is None


def test_memory_cache_lru_eviction() -> None:
    clock = Clock(0.0)
    cache = MemoryCache(max_entries=3, clock=clock)
    for name in "abc":
        cache.set(name, {"v": name}, ttl_s=100)
    assert cache.get("a") == {"v": "a"}  # a is now the most recently used
    cache.set("d", {"v": "d"}, ttl_s=100)
    assert cache.get("b") is None
    assert [cache.get(n) for n in "cda"] == [{"v": "c"}, {"v": "d"}, {"v": "a"}]  # use order now c, d, a

    cache.set("short", {"v": 0}, ttl_s=1)  # evicts c (least recently used)
    assert cache.get("c") is None
    clock.now = 2.0
    cache.set("e", {"v": "e"}, ttl_s=100)  # the expired entry makes room before any live one is evicted
    assert {n for n in ("a", "d", "e") if cache.get(n)} == {"a", "d", "e"}
    assert cache.size() == 3


def test_memory_cache_clear() -> None:
    clock = Clock(0.0)
    cache = MemoryCache(clock=clock)
    cache.set("a", {}, ttl_s=1)
    cache.set("b", {}, ttl_s=100)
    cache.set("c", {}, ttl_s=100)
    clock.now = 5
    assert cache.clear() == 2 and cache.size() == 0 and cache.get("b") is None
    assert cache.clear() == 0


# -- Redis backends ---------------------------------------------------------------------------------------------

@pytest.mark.integration
def test_redis_limiters_share_one_budget(redis_url: str, redis_client) -> None:
    clock = Clock()
    replica_a = limiter_from_url(redis_url)
    replica_a._clock = clock
    replica_b = RedisRateLimiter(redis_client, clock=clock)
    assert isinstance(replica_a, RedisRateLimiter)
    limits = Limits(requests_per_minute=4, tokens_per_minute=1_000)

    decisions = [replica.check("key-1", limits) for replica in (replica_a, replica_b, replica_a, replica_b)]
    assert [d.remaining_requests for d in decisions] == [3, 2, 1, 0] and all(d.allowed for d in decisions)

    clock.now += 20.25  # 30.25 s into the window -> 29.75 s left -> 30
    for replica in (replica_a, replica_b):
        assert replica.check("key-1", limits) == Decision(False, 30, 0, 1_000, "requests per minute")
    assert replica_b.check("key-2", limits).allowed  # other keys have their own budget

    window = int(clock.now // 60)
    assert int(redis_client.get(f"melancia:rl:{{key-1}}:{window}:requests")) == 4  # refusals not counted
    assert 0 < redis_client.ttl(f"melancia:rl:{{key-1}}:{window}:requests") <= 120  # window end + one minute of slack

    clock.now += 30
    assert replica_b.check("key-1", limits) == Decision(True, 0, 3, 1_000, None)


@pytest.mark.integration
def test_redis_limiter_counts_tokens_across_replicas(redis_client) -> None:
    clock = Clock()
    replica_a = RedisRateLimiter(redis_client, clock=clock)
    replica_b = RedisRateLimiter(redis_client, clock=clock)
    limits = Limits(requests_per_minute=100, tokens_per_minute=500)

    assert replica_a.check("k", limits).allowed
    replica_a.add_tokens("k", 320)
    assert replica_b.check("k", limits).remaining_tokens == 180
    replica_b.add_tokens("k", 200)
    refused = replica_a.check("k", limits)
    assert (refused.allowed, refused.reason, refused.retry_after_s, refused.remaining_tokens) == (
        False, "tokens per minute", 50, 0)
    clock.now += 60
    assert replica_b.check("k", limits).allowed


@pytest.mark.integration
def test_redis_limiter_is_atomic_under_concurrency(redis_url: str) -> None:
    clock = Clock()
    replicas = [limiter_from_url(redis_url) for _ in range(4)]
    for replica in replicas:
        replica._clock = clock
    limits = Limits(requests_per_minute=50, tokens_per_minute=10**9)
    allowed: list[bool] = []

    def hammer(replica: RedisRateLimiter) -> None:
        allowed.extend(replica.check("busy", limits).allowed for _ in range(30))

    threads = [threading.Thread(target=hammer, args=(replica,)) for replica in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 50 and len(allowed) == 120


@pytest.mark.integration
def test_redis_cache_round_trip_and_expiry(redis_url: str) -> None:
    cache = cache_from_url(redis_url)
    assert isinstance(cache, RedisCache)
    key = cache_key("O que é ACOS?", {"tier": "free"}, "melancia-1b")
    value = {"answer": "ACOS = investimento ÷ receita", "sources": [{"title": "Glossário", "score": 0.9}]}
    assert cache.get(key) is None
    cache.set(key, value, ttl_s=1)
    assert cache.get(key) == value and cache.size() == 1
    time.sleep(1.2)
    assert cache.get(key) is None and cache.size() == 0

    cache.set(key, value, ttl_s=60)
    cache.set(key, value, ttl_s=0)
    assert cache.get(key) is None


@pytest.mark.integration
def test_redis_cache_clear_removes_only_its_prefix(redis_client) -> None:
    cache = RedisCache(redis_client)
    other = RedisCache(redis_client, prefix=f"tenant-{uuid.uuid4().hex}:cache:")
    for number in range(1_203):  # more than one SCAN page and one DEL batch
        cache.set(f"k{number}", {"n": number}, ttl_s=60)
    other.set("k0", {"n": "other"}, ttl_s=60)
    redis_client.set("melancia:rl:{x}:1:requests", 3)
    redis_client.set("foreign", "keep me")

    assert cache.size() == 1_203
    assert cache.clear() == 1_203
    assert cache.size() == 0 and cache.get("k0") is None
    assert redis_client.get("foreign") == b"keep me" and redis_client.get("melancia:rl:{x}:1:requests") == b"3"
    assert other.get("k0") == {"n": "other"}


@pytest.mark.integration
def test_redis_cache_prefix_with_glob_characters(redis_client) -> None:
    cache = RedisCache(redis_client, prefix="c[1]*:")
    cache.set("k", {"v": 1}, ttl_s=60)
    redis_client.set("c1x:k", "not ours")
    assert cache.size() == 1 and cache.clear() == 1
    assert redis_client.get("c1x:k") == b"not ours"
