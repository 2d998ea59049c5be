"""``melancia serve predictor``: start ``kserve.ModelServer`` with the MelancIA predictor.

The predictor is loaded before the server starts; when it cannot become ready (no provider loads, no
index while retrieval is required) the process exits 1 with the reason on stderr and in the
termination log, so Kubernetes shows it and restarts with backoff. SIGTERM drains in-flight
requests for ``grace_period_s`` before exiting.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fastapi import Request
from fastapi.responses import JSONResponse

from melancia.errors import write_termination_log
from melancia.router.router import NoProviderAvailable
from melancia.serving.routes import openai_router, status_router


async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=503, content={"error": str(exc)})


def serve_predictor(config_path: Path | str, overrides: list[str] | None = None, *, port: int = 8080,
                    reload_interval_s: float = 0.0, grace_period_s: int = 30) -> int:
    # heavy and optional: the predictor module imports kserve (with a clean sys.argv), so it comes first
    from melancia.serving.predictor import MelanciaPredictor, MelanciaRepository
    from kserve import ModelServer, model_server  # noqa: I001 - after the predictor (see above)

    predictor = MelanciaPredictor(config_path, overrides)
    predictor.load()
    if not predictor.ready:
        message = f"predictor not ready: {predictor.not_ready_reason}"
        print(message, file=sys.stderr)
        write_termination_log(message)
        return 1
    app = model_server.app
    app.include_router(openai_router(lambda: predictor))
    app.include_router(status_router(lambda: predictor))
    app.add_exception_handler(NoProviderAvailable, _unavailable)
    if reload_interval_s > 0:
        predictor.poll_registry(reload_interval_s)
    server = ModelServer(http_port=port, registered_models=MelanciaRepository(), enable_grpc=False,
                         grace_period=grace_period_s)
    server.start([predictor])
    return 0
