import pytest

from melancia.config import ConfigError, load_config
from melancia.evaluation.config import EvalConfig, GateCheck
from melancia.evaluation.gate import apply_gate, require_baseline_for_deltas

CANDIDATE = {"fact_coverage": 0.62, "rougeL": 0.30, "perplexity": 8.0, "latency_p95_s": 1.2, "judge_score": None}
BASELINE = {"fact_coverage": 0.45, "rougeL": 0.29, "perplexity": 12.0, "latency_p95_s": 1.0}


def test_relative_and_absolute_checks():
    gate = apply_gate([GateCheck("fact_coverage", min_delta=0.10), GateCheck("rougeL", min=0.25, min_delta=0.02),
                       GateCheck("perplexity", max_delta=0.0), GateCheck("latency_p95_s", max=1.5)],
                      CANDIDATE, BASELINE)
    rows = {c["rule"]: c for c in gate["checks"]}
    assert rows["fact_coverage - baseline >= 0.1"]["passed"]
    assert rows["fact_coverage - baseline >= 0.1"]["value"] == pytest.approx(0.17)
    assert rows["rougeL >= 0.25"]["passed"] and not rows["rougeL - baseline >= 0.02"]["passed"]
    assert rows["perplexity - baseline <= 0"]["passed"] and rows["latency_p95_s <= 1.5"]["passed"]
    assert gate["passed"] is False


def test_a_missing_metric_fails_its_check_and_no_checks_means_no_gate():
    gate = apply_gate([GateCheck("judge_score", min=3)], CANDIDATE, BASELINE)
    assert gate == {"passed": False, "checks": [{"metric": "judge_score", "rule": "judge_score >= 3", "value": None,
                                                 "threshold": 3, "passed": False}]}
    assert apply_gate([], CANDIDATE, BASELINE) is None


def test_relative_checks_need_a_baseline():
    with pytest.raises(ConfigError, match="fact_coverage compare with a baseline"):
        require_baseline_for_deltas([GateCheck("fact_coverage", min_delta=0.1)], has_baseline=False)
    require_baseline_for_deltas([GateCheck("rougeL", min=0.1)], has_baseline=False)


def test_gate_config_errors_name_the_check(tmp_path):
    path = tmp_path / "eval.yaml"
    path.write_text("gate:\n  - {metric: rouge, min: 0.2}\n")
    with pytest.raises(ConfigError, match=r"gate\[0\]\.metric: expected one of"):
        load_config(EvalConfig, path)
    with pytest.raises(ConfigError, match="at least one of min, max"):
        load_config(EvalConfig, overrides=["gate=[{metric: rougeL}]"])


def test_paired_bootstrap_interval_separates_a_real_gain_from_noise():
    from melancia.evaluation.runner import paired_bootstrap_ci

    gain = paired_bootstrap_ci([0.5 + 0.01 * (i % 3) for i in range(40)], [0.3 + 0.01 * (i % 5) for i in range(40)])
    assert 0.15 < gain[0] < gain[1] < 0.25
    noise = paired_bootstrap_ci([0.4, 0.6] * 20, [0.6, 0.4] * 20)
    assert noise[0] < 0 < noise[1]
    assert paired_bootstrap_ci([0.1, None], [0.2, 0.3]) is None
