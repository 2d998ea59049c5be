"""``python -m melancia.operator`` (also ``melancia operator``): run the operator with kopf.

Watches TrainingRuns in every namespace (``--namespace`` to restrict), standalone (one replica; the
Deployment runs one). Liveness is served on :8081/healthz, metrics on :8080/metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import os


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m melancia.operator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespace", action="append", default=None, help="watch only this namespace (repeatable)")
    parser.add_argument("--liveness", default=os.environ.get("MELANCIA_OPERATOR_LIVENESS", "http://0.0.0.0:8081/healthz"))
    args = parser.parse_args(argv)
    import kopf

    import melancia.operator.handlers  # noqa: F401 - registers the handlers

    kopf.configure(log_format=kopf.LogFormat.PLAIN)  # one line per handler run, to the pod's log
    asyncio.run(kopf.operator(standalone=True, clusterwide=not args.namespace, namespaces=args.namespace or [],
                              liveness_endpoint=args.liveness or None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
