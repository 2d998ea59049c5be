"""Fixtures of the chart tests: the Helm binary and a copy of charts/ with the umbrella's dependencies."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.charts.helm import REPO, run, tool_dir


@pytest.fixture(scope="session")
def helm() -> Path:
    binary = tool_dir() / "helm"
    if not binary.exists():
        result = subprocess.run([str(REPO / "scripts/helm-binaries.sh")], capture_output=True, text=True)
        if result.returncode:
            pytest.fail(f"scripts/helm-binaries.sh failed:\n{result.stdout}\n{result.stderr}", pytrace=False)
    return binary


@pytest.fixture(scope="session")
def charts(helm, tmp_path_factory) -> Path:
    """A copy of charts/ with the umbrella's dependencies built (the checkout stays clean)."""
    copy = tmp_path_factory.mktemp("charts") / "charts"
    shutil.copytree(REPO / "charts", copy, symlinks=False, ignore=shutil.ignore_patterns("charts", "Chart.lock"))
    run(helm, "dependency", "build", str(copy / "melancia"))
    return copy
