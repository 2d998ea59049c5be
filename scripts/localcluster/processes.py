"""Detached daemons with pid files: started by ``up``, found again and stopped by ``down``.

A pid file holds the pid and the process's start time (``/proc/<pid>/stat``), so a pid reused by
another program after a crash is never signalled: ``down`` stops only what ``up`` started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
import ssl


class ClusterError(RuntimeError):
    """A component did not start, did not become ready, or could not be cleaned up."""


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 (starttime), counted after the command name


@dataclass(frozen=True)
class Daemon:
    name: str
    run: Path

    @property
    def pidfile(self) -> Path:
        return self.run / "pids" / f"{self.name}.pid"

    @property
    def log(self) -> Path:
        return self.run / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid when the process that ``start`` wrote down still runs, else None."""
        try:
            pid_text, started = self.pidfile.read_text().split()
        except (OSError, ValueError):
            return None
        pid = int(pid_text)
        return pid if _start_time(pid) == started else None

    def running(self) -> bool:
        return self.pid() is not None

    def start(self, argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
        if (pid := self.pid()) is not None:
            return pid
        self.pidfile.parent.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as sink:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                       cwd=cwd or self.run, env={**os.environ, **(env or {})},
                                       start_new_session=True)
        started = _start_time(process.pid)
        self.pidfile.write_text(f"{process.pid} {started}\n")
        return process.pid

    def check_alive(self) -> None:
        if not self.running():
            raise ClusterError(f"{self.name} exited; last lines of {self.log}:\n{self.tail()}")

    def stop(self, timeout_s: float = 20.0) -> None:
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while self.pid() is not None and time.monotonic() < deadline:
                time.sleep(0.2)
            if self.pid() is not None:
                os.killpg(pid, signal.SIGKILL)  # its own session: the daemon and what it forked
                while self.pid() is not None:
                    time.sleep(0.1)
        self.pidfile.unlink(missing_ok=True)

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait(self, ready: Callable[[], bool], what: str, timeout_s: float = 120.0) -> None:
        """Poll ``ready`` until it holds; fail with the log's tail when the daemon exits or time runs out."""
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if ready():
                    return
            except (OSError, urllib.error.URLError, ssl.SSLError, subprocess.SubprocessError) as error:
                last = str(error)
            time.sleep(0.3)
        raise ClusterError(f"{self.name}: {what} not ready after {timeout_s:.0f} s ({last}); "
                           f"last lines of {self.log}:\n{self.tail()}")


def http_ok(url: str, *, context: ssl.SSLContext | None = None, headers: dict[str, str] | None = None) -> bool:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=3, context=context) as response:
            return response.status == 200
    except urllib.error.HTTPError:
        return False


def insecure_context() -> ssl.SSLContext:
    """For /healthz of components that serve it on a self-signed certificate (always allowed)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def run(argv: list[str], *, check: bool = True, env: dict[str, str] | None = None, input_text: str | None = None,
        timeout_s: float | None = None) -> subprocess.CompletedProcess[str]:
    """A command whose failure is reported with its output (never a bare CalledProcessError)."""
    result = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})},
                            input=input_text, timeout=timeout_s, check=False)
    if check and result.returncode != 0:
        raise ClusterError(f"{' '.join(argv[:6])}{' ...' if len(argv) > 6 else ''} failed ({result.returncode}):\n"
                           f"{(result.stdout + result.stderr)[-3000:]}")
    return result
