"""Prometheus metrics of the operator, served on ``MELANCIA_OPERATOR_METRICS_PORT`` (default 8080)."""

from __future__ import annotations

import os

from prometheus_client import Counter, start_http_server

RECONCILES = Counter("melancia_operator_reconciles_total", "Reconciliations by result", ["result"])
TRANSITIONS = Counter("melancia_operator_phase_transitions_total", "TrainingRun phase changes", ["phase"])
JOBS = Counter("melancia_operator_jobs_created_total", "Jobs created by role", ["role"])
FALLBACKS = Counter("melancia_operator_cpu_fallbacks_total", "Runs moved from GPU to CPU")
PROMOTIONS = Counter("melancia_operator_promotions_total", "Versions promoted and rolled out")
_started = False


def start() -> None:
    global _started
    port = int(os.environ.get("MELANCIA_OPERATOR_METRICS_PORT", "8080"))
    if not _started and port > 0:
        start_http_server(port)
        _started = True
