"""The promotion gate: thresholds from the eval config applied to a report's aggregates.

A check passes when the candidate's metric meets every bound it names: ``min``/``max`` on the
candidate's own value, ``min_delta``/``max_delta`` on the difference to the baseline. A metric
that is missing (not computed) fails its check: a gate never passes by default.
"""

from __future__ import annotations

import math
from typing import Any

from melancia.config import ConfigError
from melancia.evaluation.config import GateCheck
from melancia.evaluation.schema import GateCheckResult, GateResult, Scores


def require_baseline_for_deltas(checks: list[GateCheck], has_baseline: bool) -> None:
    if has_baseline:
        return
    relative = [c.metric for c in checks if c.min_delta is not None or c.max_delta is not None]
    if relative:
        raise ConfigError(f"gate: checks on {', '.join(relative)} compare with a baseline; pass --baseline "
                          "(or drop min_delta/max_delta)")


def apply_gate(checks: list[GateCheck], candidate: Scores, baseline: Scores | None) -> GateResult | None:
    """``{"passed": bool, "checks": [...]}``, or None when no check is configured."""
    if not checks:
        return None
    results = [row for check in checks for row in _check_rows(check, candidate, baseline)]
    return {"passed": all(r["passed"] for r in results), "checks": results}


def _check_rows(check: GateCheck, candidate: Scores, baseline: Scores | None) -> list[GateCheckResult]:
    value = _number(candidate.get(check.metric))
    base = _number(baseline.get(check.metric)) if baseline else None
    delta = value - base if value is not None and base is not None else None
    bounds = [("min", check.min, value, lambda v, t: v >= t), ("max", check.max, value, lambda v, t: v <= t),
              ("min_delta", check.min_delta, delta, lambda v, t: v >= t),
              ("max_delta", check.max_delta, delta, lambda v, t: v <= t)]
    rows: list[GateCheckResult] = []
    for name, threshold, observed, holds in bounds:
        if threshold is None:
            continue
        symbol = ">=" if name.startswith("min") else "<="
        subject = check.metric if name in ("min", "max") else f"{check.metric} - baseline"
        rows.append({"metric": check.metric, "rule": f"{subject} {symbol} {threshold:g}", "value": observed,
                     "threshold": threshold, "passed": observed is not None and bool(holds(observed, threshold))})
    return rows


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value
