"""Prometheus metrics of the predictor (served on KServe's ``/metrics`` with its own)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from melancia.router.router import Answer

ANSWERS = Counter("melancia_predictor_answers_total", "Answers by provider, arm and outcome",
                  ["provider", "arm", "outcome"])
LATENCY = Histogram("melancia_predictor_answer_seconds", "Time to a complete answer", ["provider"],
                    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64))
TOKENS = Counter("melancia_predictor_tokens_total", "Tokens by provider and direction", ["provider", "direction"])
COST = Counter("melancia_predictor_cost_usd_total", "Estimated cost in US$", ["provider"])
FALLBACKS = Counter("melancia_predictor_fallbacks_total", "Providers passed over before an answer", ["provider"])
UNANSWERED = Counter("melancia_predictor_unanswered_total", "Requests no provider could answer", [])
READY = Gauge("melancia_predictor_ready", "1 when the models and the index are loaded")
RELOADS = Counter("melancia_predictor_reloads_total", "Router reloads by outcome", ["outcome"])


def observe(answer: Answer) -> None:
    ANSWERS.labels(answer.provider, answer.arm or "", "ok").inc()
    LATENCY.labels(answer.provider).observe(answer.latency_seconds)
    TOKENS.labels(answer.provider, "input").inc(answer.input_tokens)
    TOKENS.labels(answer.provider, "output").inc(answer.output_tokens)
    COST.labels(answer.provider).inc(answer.estimated_cost)
    for skipped in answer.fallbacks:
        FALLBACKS.labels(skipped["provider"]).inc()
