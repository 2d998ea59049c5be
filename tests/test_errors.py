"""The one-line reasons users and the pod status get for a failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from melancia.config import ConfigError
from melancia.errors import MAX_REASON_CHARS, MelanciaError, failure_reason, write_termination_log


def test_a_user_error_is_its_message_and_a_bug_keeps_its_type():
    assert failure_reason(ConfigError("seed: expected an integer,\n  got 'x'")) == "seed: expected an integer, got 'x'"
    assert failure_reason(KeyError("base_model")) == "KeyError: 'base_model'"


def test_a_long_reason_is_cut_to_one_bounded_line():
    reason = failure_reason(MelanciaError("x " * MAX_REASON_CHARS))
    assert len(reason) == MAX_REASON_CHARS and "\n" not in reason


def test_the_termination_log_is_written_only_where_it_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    log = tmp_path / "termination-log"
    monkeypatch.setenv("MELANCIA_TERMINATION_LOG", str(log))
    write_termination_log("gate failed")
    assert not log.exists()
    log.touch()
    write_termination_log("gate failed")
    assert log.read_text() == "gate failed\n"
