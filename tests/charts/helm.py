"""A real Helm for the chart tests: where it lives, running it, rendering a chart to objects."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def tool_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "melancia/helm/bin"
    return Path(os.environ.get("MELANCIA_HELM_BIN") or cache)


def run(helm: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(helm), *args], capture_output=True, text=True)
    if check and result.returncode:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def profile_args(charts: Path, chart: str, profile: str | None) -> list[str]:
    return ["-f", str(charts / chart / profile)] if profile else []


def render(helm: Path, charts: Path, chart: str, profile: str | None = None, *extra: str) -> list[dict]:
    out = run(helm, "template", "melancia", str(charts / chart), "--namespace", "melancia",
              *profile_args(charts, chart, profile), *extra).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]
