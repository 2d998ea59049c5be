"""``python -m melancia.jobs.evaluate``: the gated evaluation Job.

Evaluates the candidate of a training run (``--run-dir`` / ``MELANCIA_RUN_DIR``) against the
baseline :func:`melancia.evaluation.promotion.choose_baseline` picks (the current champion, else
the base model), writes the reports next to the run (``<run>/eval``), and exits 0 only when the
gate passes. The verdict is machine-readable: the last line of stdout is JSON, the same JSON goes
to ``/dev/termination-log`` when it exists, and MLflow carries it as ``melancia.gate`` tags on the
evaluation run, the training run and the registered version. The operator reads any of them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from melancia.config import ConfigError, load_config
from melancia.errors import write_termination_log
from melancia.evaluation.config import EvalConfig
from melancia.evaluation.pipeline import run_evaluation
from melancia.evaluation.promotion import choose_baseline
from melancia.jobs.train import report_failure
from melancia.tracking import read_run_record


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m melancia.jobs.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", default=env.get("MELANCIA_RUN_DIR"), help="training run folder (candidate)")
    parser.add_argument("--config", default=env.get("MELANCIA_EVAL_CONFIG", "configs/eval/default.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=None, help="key=value override")
    parser.add_argument("--baseline", default=env.get("MELANCIA_BASELINE"), help="override the champion/base choice")
    parser.add_argument("--out", default=env.get("MELANCIA_REPORT_DIR"), help="report folder (default <run>/eval)")
    args = parser.parse_args(argv)
    if args.overrides is None:
        args.overrides = [item.strip() for item in env.get("MELANCIA_EVAL_SET", "").split(";") if item.strip()]
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    if not args.run_dir:
        raise ConfigError("--run-dir (or MELANCIA_RUN_DIR): the training run folder to evaluate")
    run_dir = Path(args.run_dir)
    record = read_run_record(run_dir)
    if record is None:
        raise ConfigError(f"{run_dir}: not a finished training run (no run.json)")
    config = load_config(EvalConfig, args.config, args.overrides)
    baseline = args.baseline or choose_baseline(record)
    outcome = run_evaluation(config, str(run_dir), baseline, out_dir=Path(args.out) if args.out else run_dir / "eval")
    gate = outcome.report.get("gate") or {"checks": []}
    return {"verdict": outcome.verdict, "candidate": str(run_dir), "baseline": baseline,
            "registered_model": record.registered_model, "version": record.registered_version,
            "eval_run_id": outcome.eval_run_id, "report": str(outcome.files["json"]),
            "failed_checks": [c["rule"] for c in gate["checks"] if not c["passed"]]}


def emit(result: dict[str, Any]) -> None:
    line = json.dumps(result, ensure_ascii=False)
    print(line, flush=True)
    write_termination_log(line)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except Exception as exc:  # the Job's one-line reason, as JSON the operator can read
        reason = report_failure(exc)
        print(f"evaluation failed: {reason}", file=sys.stderr, flush=True)
        emit({"verdict": "error", "reason": reason})
        return 1
    emit(result)
    return 0 if result["verdict"] == "passed" else 1


if __name__ == "__main__":
    sys.exit(main())
