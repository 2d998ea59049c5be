"""The model router: tier rules, sticky A/B arms, fallback chains, circuit breakers, RAG, calculator.

One call, :meth:`Router.answer` (or :meth:`Router.stream`), turns a question into an
:class:`Answer` that records who answered, why, what it cost and how long it took:

1. A calculation question ("gastei R$ 200 e vendi R$ 1.000, qual meu ACOS?") is answered exactly by
   :mod:`melancia.calculator`; no model guesses numbers.
2. Otherwise the tier's rule picks an arm (a user always lands in the same arm: the bucket is a
   stable hash of the experiment name and user id), and the arm's chain of providers is tried in
   order. A provider is skipped while its circuit is open or when it is not configured (its API key
   is unset); a failure or a timeout moves on to the next one.
3. Retrieved chunks from the knowledge index go into the prompt as fenced data and come back as
   sources.
"""

from __future__ import annotations

import hashlib
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from melancia.calculator.detector import answer_calculations
from melancia.providers.base import Completion, Messages, Provider, ProviderError
from melancia.router.breaker import CircuitBreaker
from melancia.router.config import Arm, ProviderSpec, RouterConfig
from melancia.router.prompts import Source, build_messages, clip_words
from melancia.router.stats import RouterStats

CALCULATOR = "calculator"


class NoProviderAvailable(ProviderError):
    """Every provider of the chain failed or was skipped; the message lists why, per provider."""


@dataclass
class Query:
    """One question to route."""

    question: str
    tier: str | None = None
    user_id: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    history: Messages = field(default_factory=list)
    """Earlier turns of the conversation (user and assistant messages)."""


@dataclass
class Answer:
    text: str
    provider: str
    model: str
    routing_reason: str
    tier: str
    arm: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    estimated_cost: float = 0.0
    latency_seconds: float = 0.0
    sources: list[Source] = field(default_factory=list)
    calculation: dict[str, Any] | None = None
    fallbacks: list[dict[str, str]] = field(default_factory=list)
    """Providers tried before the one that answered, each with the reason it was passed over."""
    finish_reason: str = "stop"

    def as_dict(self) -> dict[str, Any]:
        return {"answer": self.text, "provider": self.provider, "model_name": self.model,
                "routing_reason": self.routing_reason, "tier": self.tier, "arm": self.arm,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "estimated_cost": round(self.estimated_cost, 8), "latency_seconds": round(self.latency_seconds, 4),
                "sources": [s.as_dict() for s in self.sources], "calculation": self.calculation,
                "fallbacks": self.fallbacks, "finish_reason": self.finish_reason}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Answer:
        """An answer from its :meth:`as_dict` form (the predictor's v1 prediction, a cached answer)."""
        sources = [Source(s["rank"], s["doc_id"], s["title"], s["heading"], s["source"], s["score"], s["excerpt"])
                   for s in record.get("sources", [])]
        return cls(text=record.get("answer", ""), provider=record["provider"], model=record["model_name"],
                   routing_reason=record["routing_reason"], tier=record["tier"], arm=record.get("arm"),
                   input_tokens=record.get("input_tokens", 0), output_tokens=record.get("output_tokens", 0),
                   estimated_cost=record.get("estimated_cost", 0.0),
                   latency_seconds=record.get("latency_seconds", 0.0), sources=sources,
                   calculation=record.get("calculation"), fallbacks=record.get("fallbacks", []),
                   finish_reason=record.get("finish_reason", "stop"))


@dataclass
class StreamEvent:
    """``sources`` first, then ``token`` pieces, then ``done`` (with the full answer) or ``error``."""

    kind: str
    data: Any


@dataclass
class Route:
    tier: str
    arm: Arm
    reason: str


class ProviderSlot:
    """A configured provider, its breaker, and why it is unavailable (None when usable)."""

    def __init__(self, name: str, spec: ProviderSpec, provider: Provider | None, breaker: CircuitBreaker,
                 unavailable: str | None = None) -> None:
        self.name, self.spec, self.provider, self.breaker = name, spec, provider, breaker
        self.unavailable = unavailable

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.spec.price_input_per_million
                + output_tokens * self.spec.price_output_per_million) / 1e6

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.spec.kind, "model": self.provider.model if self.provider else
                self.spec.model, "available": self.unavailable is None, "reason": self.unavailable,
                "circuit": self.breaker.state, "retry_in_s": round(self.breaker.retry_in(), 1),
                "price_input_per_million": self.spec.price_input_per_million,
                "price_output_per_million": self.spec.price_output_per_million, "timeout_s": self.spec.timeout_s}


def bucket(experiment: str, user_id: str) -> float:
    """A stable number in [0, 1) for (experiment, user): the same user always gets the same arm."""
    digest = hashlib.sha256(f"{experiment}\x00{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def pick_arm(arms: list[Arm], point: float) -> Arm:
    total = sum(arm.weight for arm in arms)
    edge = 0.0
    for arm in arms:
        edge += arm.weight / total
        if point < edge:
            return arm
    return arms[-1]


class Router:
    def __init__(self, config: RouterConfig, slots: dict[str, ProviderSlot], *, index: Any = None,
                 rng: random.Random | None = None) -> None:
        self.config, self.slots, self.index = config, slots, index
        self.stats = RouterStats()
        self._rng = rng or random.Random()
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="provider")

    # ------------------------------------------------------------------ routing

    def route(self, tier: str | None, user_id: str | None) -> Route:
        tier = tier or self.config.default_tier
        rule = self.config.tiers.get(tier)
        if rule is None:
            raise ValueError(f"unknown tier {tier!r}; expected one of {sorted(self.config.tiers)}")
        if len(rule.arms) == 1:
            arm = rule.arms[0]
            return Route(tier, arm, f"tier {tier} -> {' > '.join(arm.chain)}")
        experiment = rule.experiment or f"{tier}-ab"
        if user_id:
            point = bucket(experiment, user_id)
            why = f"bucket {point:.3f} of user"
        else:
            point = self._rng.random()
            why = "no user_id, random"
        arm = pick_arm(rule.arms, point)
        return Route(tier, arm, f"tier {tier}, A/B {experiment!r} arm {arm.name!r} ({why}) -> {' > '.join(arm.chain)}")

    # ------------------------------------------------------------------ answering

    def answer(self, query: Query) -> Answer:
        started = time.perf_counter()
        route = self.route(query.tier, query.user_id)
        sources = self.retrieve(query.question)
        calculated = self._calculate(query, route, sources, started)
        if calculated is not None:
            return calculated
        messages = build_messages(query.question, sources, system_prompt=self.config.system_prompt,
                                  history=query.history)
        skipped: list[dict[str, str]] = []
        for slot in self._usable(route, skipped):
            attempt = time.perf_counter()
            try:
                completion = self._call(slot, messages, query)
            except ProviderError as exc:
                self._failed(slot, skipped, str(exc))
                continue
            return self._answered(slot, route, completion, sources, skipped, started, attempt)
        self.stats.unanswered(route.arm.name)
        raise NoProviderAvailable(_nobody_answered(skipped))

    def stream(self, query: Query) -> Iterator[StreamEvent]:
        """Events of one answer; a provider that fails before its first piece is replaced by the next one."""
        started = time.perf_counter()
        route = self.route(query.tier, query.user_id)
        sources = self.retrieve(query.question)
        yield StreamEvent("sources", [s.as_dict() for s in sources])
        calculated = self._calculate(query, route, sources, started)
        if calculated is not None:
            for i, word in enumerate(calculated.text.split(" ")):
                yield StreamEvent("token", word if i == 0 else " " + word)
            yield StreamEvent("done", calculated)
            return
        messages = build_messages(query.question, sources, system_prompt=self.config.system_prompt,
                                  history=query.history)
        skipped: list[dict[str, str]] = []
        for slot in self._usable(route, skipped):
            attempt = time.perf_counter()
            pieces: list[str] = []
            try:
                for piece in self._stream_call(slot, messages, query):
                    pieces.append(piece)
                    yield StreamEvent("token", piece)
            except ProviderError as exc:
                self._failed(slot, skipped, str(exc))
                if pieces:  # text already reached the client: do not splice another model's answer onto it
                    self.stats.unanswered(route.arm.name)
                    yield StreamEvent("error", f"{slot.name} stopped mid-answer: {exc}")
                    return
                continue
            text = "".join(pieces)
            completion = Completion(text=text, model=slot.provider.model,
                                    input_tokens=slot.provider.count_tokens(_joined(messages)),
                                    output_tokens=slot.provider.count_tokens(text) if text else 0)
            yield StreamEvent("done", self._answered(slot, route, completion, sources, skipped, started, attempt))
            return
        self.stats.unanswered(route.arm.name)
        yield StreamEvent("error", _nobody_answered(skipped))

    def retrieve(self, question: str) -> list[Source]:
        settings = self.config.retrieval
        if not settings.enabled or self.index is None:
            return []
        hits = self.index.query(question, k=settings.k)
        return [Source(h.rank, h.doc_id, h.title, h.heading, h.source, h.score, clip_words(h.text, settings.max_words_per_chunk))
                for h in hits]

    # ------------------------------------------------------------------ internals

    def _calculate(self, query: Query, route: Route, sources: list[Source], started: float) -> Answer | None:
        if not self.config.calculator:
            return None

        calculations = answer_calculations(query.question)
        if not calculations:
            return None
        latency = time.perf_counter() - started
        self.stats.answered(CALCULATOR, None, latency_s=latency, input_tokens=0, output_tokens=0, cost=0.0,
                            fell_back=False)
        names = ", ".join(c.metric.upper() for c in calculations)
        text = "\n\n".join(c.answer() for c in calculations)
        record = calculations[0].as_dict() if len(calculations) == 1 else {
            "metric": "+".join(c.metric for c in calculations), "parts": [c.as_dict() for c in calculations],
            "answer": text}
        return Answer(text=text, provider=CALCULATOR, model="melancia-calculator",
                      routing_reason=f"calculation question: {names} computed exactly", tier=route.tier,
                      sources=sources, calculation=record, latency_seconds=latency)

    def _usable(self, route: Route, skipped: list[dict[str, str]]) -> Iterator[ProviderSlot]:
        for name in route.arm.chain:
            slot = self.slots[name]
            if slot.unavailable is not None or slot.provider is None:
                skipped.append({"provider": name, "reason": f"unavailable: {slot.unavailable}"})
            elif not slot.breaker.allow():
                skipped.append({"provider": name, "reason": f"circuit open, retry in {slot.breaker.retry_in():.0f} s"})
            else:
                yield slot

    def _failed(self, slot: ProviderSlot, skipped: list[dict[str, str]], reason: str) -> None:
        slot.breaker.record_failure()
        self.stats.attempt_failed(slot.name, fell_back=True)
        skipped.append({"provider": slot.name, "reason": reason.removeprefix(f"{slot.name}: ")})

    def _call(self, slot: ProviderSlot, messages: Messages, query: Query) -> Completion:
        assert slot.provider is not None
        future = self._pool.submit(slot.provider.chat, messages, **self._sampling(query))
        try:
            return future.result(timeout=slot.spec.timeout_s)
        except FutureTimeout:
            raise ProviderError(f"{slot.name}: no answer within {slot.spec.timeout_s:g} s") from None
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001 - a provider bug must not take the router down
            raise ProviderError(f"{slot.name}: {type(exc).__name__}") from None

    def _stream_call(self, slot: ProviderSlot, messages: Messages, query: Query) -> Iterator[str]:
        assert slot.provider is not None
        return _with_timeout(lambda: slot.provider.stream(messages, **self._sampling(query)),
                             slot.spec.timeout_s, slot.name, self._pool)

    def _sampling(self, query: Query) -> dict[str, Any]:
        return {"max_tokens": query.max_tokens or self.config.max_tokens,
                "temperature": self.config.temperature if query.temperature is None else query.temperature}

    def _answered(self, slot: ProviderSlot, route: Route, completion: Completion, sources: list[Source],
                  skipped: list[dict[str, str]], started: float, attempt: float) -> Answer:
        slot.breaker.record_success()
        cost = slot.cost(completion.input_tokens, completion.output_tokens)
        latency = time.perf_counter() - started
        self.stats.answered(slot.name, route.arm.name, latency_s=time.perf_counter() - attempt,
                            input_tokens=completion.input_tokens, output_tokens=completion.output_tokens,
                            cost=cost, fell_back=bool(skipped))
        reason = route.reason
        if skipped:
            reason += "; fell back past " + ", ".join(f"{s['provider']} ({s['reason']})" for s in skipped)
        return Answer(text=completion.text.strip(), provider=slot.name, model=completion.model, routing_reason=reason,
                      tier=route.tier, arm=route.arm.name, input_tokens=completion.input_tokens,
                      output_tokens=completion.output_tokens, estimated_cost=cost, latency_seconds=latency,
                      sources=sources, fallbacks=list(skipped), finish_reason=completion.finish_reason)

    # ------------------------------------------------------------------ status

    def provider_status(self) -> list[dict[str, Any]]:
        return [slot.status() for slot in self.slots.values()]

    def ready(self) -> tuple[bool, str]:
        """Ready when every tier has a usable provider and, if required, the index answers."""
        for tier, rule in self.config.tiers.items():
            names = {name for arm in rule.arms for name in arm.chain}
            if not any(self.slots[n].unavailable is None and self.slots[n].provider is not None for n in names):
                return False, f"tier {tier}: no provider loaded ({_unavailable(self.slots, names)})"
        settings = self.config.retrieval
        if settings.enabled and settings.required and self.index is None:
            return False, "knowledge index not loaded"
        return True, "ready"

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _unavailable(slots: dict[str, ProviderSlot], names: set[str]) -> str:
    return "; ".join(f"{n}: {slots[n].unavailable}" for n in sorted(names))


def _nobody_answered(skipped: list[dict[str, str]]) -> str:
    return "no provider could answer: " + "; ".join(f"{s['provider']}: {s['reason']}" for s in skipped)


def _joined(messages: Messages) -> str:
    return "\n".join(m["content"] for m in messages)


def _with_timeout(open_stream: Callable[[], Iterator[str]], timeout_s: float, name: str,
                  pool: ThreadPoolExecutor) -> Iterator[str]:
    """The stream's pieces, raising ProviderError when the next piece takes longer than ``timeout_s``."""
    pieces: queue.Queue[tuple[str, Any]] = queue.Queue()
    stop = threading.Event()

    def produce() -> None:
        try:
            for piece in open_stream():
                if stop.is_set():
                    return
                pieces.put(("piece", piece))
            pieces.put(("end", None))
        except ProviderError as exc:
            pieces.put(("error", str(exc)))
        except Exception as exc:  # noqa: BLE001 - reported to the consumer as a provider failure
            pieces.put(("error", f"{name}: {type(exc).__name__}"))

    pool.submit(produce)
    try:
        while True:
            try:
                kind, value = pieces.get(timeout=timeout_s)
            except queue.Empty:
                raise ProviderError(f"{name}: no output for {timeout_s:g} s") from None
            if kind == "end":
                return
            if kind == "error":
                raise ProviderError(value)
            yield value
    finally:
        stop.set()


def provider_configured(spec: ProviderSpec) -> str | None:
    """Why an HTTP provider cannot be used (its key variable is unset), or None."""
    if spec.kind == "openai" and spec.api_key_env and not os.environ.get(spec.api_key_env):
        return f"{spec.api_key_env} not set"
    return None
