"""Prometheus metrics of the API gateway, in a registry of its own (one per app instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from melancia.router.router import Answer


class APIMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("melancia_api_requests_total", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("melancia_api_request_seconds", "HTTP request latency by route", ["route"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=r)
        self.in_flight = Gauge("melancia_api_in_flight_requests", "Requests being served", registry=r)
        self.tokens = Counter("melancia_api_tokens_total", "Tokens by provider and direction",
                              ["provider", "direction"], registry=r)
        self.cost = Counter("melancia_api_cost_usd_total", "Estimated cost in US$ by provider", ["provider"],
                            registry=r)
        self.answers = Counter("melancia_api_answers_total", "Answers by provider and tier", ["provider", "tier"],
                               registry=r)
        self.fallbacks = Counter("melancia_api_fallbacks_total", "Providers passed over before an answer",
                                 ["provider"], registry=r)
        self.provider_errors = Counter("melancia_api_provider_errors_total", "Requests no provider could answer",
                                       ["tier"], registry=r)
        self.cache = Counter("melancia_api_cache_total", "Response cache lookups by result", ["result"], registry=r)
        self.rate_limited = Counter("melancia_api_rate_limited_total", "Requests refused by rate limits",
                                    ["tier", "limit"], registry=r)

    def observe_answer(self, answer: Answer) -> None:
        self.answers.labels(answer.provider, answer.tier).inc()
        self.tokens.labels(answer.provider, "input").inc(answer.input_tokens)
        self.tokens.labels(answer.provider, "output").inc(answer.output_tokens)
        self.cost.labels(answer.provider).inc(answer.estimated_cost)
        for skipped in answer.fallbacks:
            self.fallbacks.labels(skipped["provider"]).inc()
