"""``melancia serve``: the API under uvicorn, with a graceful, observable shutdown.

On SIGTERM or Ctrl-C the app is marked as draining first (``/ready`` answers 503 and new queries get
503), then uvicorn stops accepting connections and waits up to ``grace_period_s`` for the requests
in flight to finish.
"""

from __future__ import annotations

from types import FrameType

import uvicorn
from fastapi import FastAPI


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.fastapi_app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.fastapi_app.state.services.draining = True
        super().handle_exit(sig, frame)


def serve_api(app: FastAPI, *, host: str = "127.0.0.1", port: int = 8000, grace_period_s: int = 30) -> int:
    config = uvicorn.Config(app, host=host, port=port, timeout_graceful_shutdown=grace_period_s,
                            log_level="info", access_log=False, proxy_headers=True)
    server = DrainingServer(config, app)
    server.run()
    return 0
