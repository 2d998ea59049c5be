"""Errors a user can act on, reported as one clear line (CLI exit 2, Job termination message).

Every error whose message is written for the user (which file, line, field, what was expected)
subclasses :class:`MelanciaError`; the CLI prints such an error as one line without a traceback, and a
Job writes it to its termination log, where Kubernetes shows it in the pod status. Anything else is a
bug and keeps its type name in the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

TERMINATION_LOG = "/dev/termination-log"
MAX_REASON_CHARS = 1000


class MelanciaError(Exception):
    """An error whose message tells the user what to fix; shown without a traceback."""


class TrainingSetupError(MelanciaError, RuntimeError):
    """The requested model, method, device or resume point cannot be used; the message says why."""


def failure_reason(exc: BaseException) -> str:
    """One line for people and for the pod status; never a traceback."""
    reason = str(exc) if isinstance(exc, MelanciaError) else f"{type(exc).__name__}: {exc}"
    return " ".join(reason.split())[:MAX_REASON_CHARS]


def write_termination_log(text: str) -> None:
    """Leave ``text`` where Kubernetes shows it in the pod status, when the file exists (in a pod)."""
    log = Path(os.environ.get("MELANCIA_TERMINATION_LOG", TERMINATION_LOG))
    if log.exists():
        try:
            log.write_text(text + "\n", encoding="utf-8")
        except OSError:
            pass
