"""The README's main command (``melancia run``) on the embedded defaults."""

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from melancia.cli import app

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.integration
def test_local_run_builds_the_bundled_datasets(melancia_home, monkeypatch):
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(app, ["run", "--config", "configs/run/local.yaml"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "Dataset summary" in result.output and "rejected rows: 0" in result.output
    out = melancia_home / "datasets"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["heldout"] >= 60 and manifest["counts"]["train"] >= 300
    assert manifest["rejected"] == 0 and manifest["removed"]["leak"] == 0
    assert os.path.getsize(out / "stats.png") > 10_000
