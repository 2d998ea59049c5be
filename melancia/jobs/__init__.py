"""Entry points that Kubernetes Job containers run (``python -m melancia.jobs.<name>``)."""

from __future__ import annotations

import os
from pathlib import Path

TERMINATION_LOG = "/dev/termination-log"


def write_termination_log(text: str) -> None:
    """Leave ``text`` where Kubernetes shows it in the pod status, when the file exists (in a pod)."""
    log = Path(os.environ.get("MELANCIA_TERMINATION_LOG", TERMINATION_LOG))
    if log.exists():
        try:
            log.write_text(text + "\n", encoding="utf-8")
        except OSError:
            pass
