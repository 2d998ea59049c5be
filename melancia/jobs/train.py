"""``python -m melancia.jobs.train``: what a training Job's container runs.

Config from ``--config`` or ``MELANCIA_TRAIN_CONFIG``, overrides from ``--set`` or
``MELANCIA_TRAIN_SET`` (``key=value`` separated by ``;``), outputs to ``--output-dir`` or
``MELANCIA_OUTPUT_DIR`` (a mounted volume in the cluster), MLflow at ``MLFLOW_TRACKING_URI``.
A restarted pod resumes from the newest checkpoint in the output folder (``--resume auto``).
On failure the process exits non-zero with a one-line reason on stderr and in the termination
log (``/dev/termination-log`` when it exists), which Kubernetes shows in the pod status.
"""

from __future__ import annotations

import argparse
import os
import sys

from melancia.config import load_config
from melancia.errors import failure_reason, write_termination_log
from melancia.training.checkpoint import latest_checkpoint
from melancia.training.config import TrainConfig
from melancia.training.trainer import output_dir_for, train


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m melancia.jobs.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=env.get("MELANCIA_TRAIN_CONFIG"), help="YAML train config")
    parser.add_argument("--set", dest="overrides", action="append", default=None, help="key=value override")
    parser.add_argument("--output-dir", default=env.get("MELANCIA_OUTPUT_DIR"), help="where outputs go")
    parser.add_argument("--resume", choices=["auto", "always", "never"], default=env.get("MELANCIA_RESUME", "auto"),
                        help="auto: continue from the newest checkpoint when there is one")
    args = parser.parse_args(argv)
    if args.overrides is None:
        args.overrides = [item.strip() for item in env.get("MELANCIA_TRAIN_SET", "").split(";") if item.strip()]
    return args


def run(args: argparse.Namespace) -> None:
    overrides = list(args.overrides)
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    config = load_config(TrainConfig, args.config, overrides)
    resume = args.resume == "always" or (
        args.resume == "auto" and latest_checkpoint(output_dir_for(config) / "checkpoints") is not None)
    result = train(config, resume=resume)
    print(f"outputs: {result.output_dir}", flush=True)


def report_failure(exc: BaseException) -> str:
    """One line for people and for the pod status (also written to the termination log)."""
    reason = failure_reason(exc)
    write_termination_log(reason)
    return reason


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except Exception as exc:  # the Job's one-line reason; details stay in the log above
        print(f"training failed: {report_failure(exc)}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
