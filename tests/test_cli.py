"""The command line: help on every command, exit codes, and errors without tracebacks."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from melancia.cli import app

FIXTURE = Path(__file__).parent / "data" / "fixture"
runner = CliRunner()


def all_commands(group: typer.Typer, prefix=()):
    click_group = typer.main.get_group(group)

    def walk(command, path):
        yield path
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, (*path, name))

    yield from walk(click_group, prefix)


def test_every_command_has_help():
    commands = list(all_commands(app))
    assert ("data", "validate") in commands and ("run",) in commands
    for path in commands:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output


def test_console_script_is_installed():
    melancia = Path(sys.executable).parent / "melancia"
    result = subprocess.run([str(melancia), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "data" in result.stdout and "run" in result.stdout


@pytest.fixture
def use_tiny_tokenizer(monkeypatch, tiny_tokenizer):
    monkeypatch.setattr("melancia.models.loading.load_tokenizer", lambda ref: tiny_tokenizer)


def test_validate_reports_rejections_and_exits_1(tmp_path, use_tiny_tokenizer):
    bad = tmp_path / "bad.jsonl"
    bad.write_text((FIXTURE / "heldout.jsonl").read_text() + "{not json\n")
    result = runner.invoke(app, ["data", "validate", str(bad), "--quarantine", str(tmp_path / "q.jsonl")])
    assert result.exit_code == 1
    assert f"{bad}:2: malformed JSON" in result.output
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"files": 1, "valid": 1, "rejected": 1}
    assert (tmp_path / "q.jsonl").exists()
    allowed = runner.invoke(app, ["data", "validate", str(bad), "--quarantine", str(tmp_path / "q.jsonl"), "--allow-rejects"])
    assert allowed.exit_code == 0


def test_missing_path_is_one_clear_line_not_a_traceback(tmp_path, use_tiny_tokenizer):
    result = runner.invoke(app, ["data", "validate", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 2
    assert "no such file or directory" in result.output and "Traceback" not in result.output


def test_dedupe_split_stats_commands(tmp_path, use_tiny_tokenizer):
    src = tmp_path / "src.jsonl"
    rows = [{"id": f"r{i}", "messages": [{"role": "user", "content": f"Pergunta número {i} sobre tema {i * 7919}?"},
                                         {"role": "assistant", "content": f"Resposta {i}."}],
             "metadata": {"category": "metricas" if i % 2 else "plataformas", "source": "t"}} for i in range(20)]
    rows.append({**rows[0], "id": "copy"})
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    result = runner.invoke(app, ["data", "dedupe", str(src), "--out", str(tmp_path / "d.jsonl"),
                                 "--against", str(FIXTURE / "heldout.jsonl")])
    assert result.exit_code == 0 and json.loads(result.stdout.strip().splitlines()[-1])["removed"] == 1
    result = runner.invoke(app, ["data", "split", str(tmp_path / "d.jsonl"), "--out-dir", str(tmp_path / "s"), "--fraction", "0.2"])
    assert json.loads(result.stdout) == {"train": 16, "eval": 4}
    result = runner.invoke(app, ["data", "stats", str(tmp_path / "s"), "--out-dir", str(tmp_path / "st")])
    assert result.exit_code == 0
    stats = json.loads((tmp_path / "st" / "stats.json").read_text())
    assert stats["train"]["examples"] == 16 and (tmp_path / "st" / "stats.png").exists()


def test_data_build_with_bad_config_field(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("sed: 1\n")
    result = runner.invoke(app, ["data", "build", "--config", str(cfg)])
    assert result.exit_code == 2 and "unknown field 'sed'" in result.output and "seed" in result.output


def test_version():
    assert runner.invoke(app, ["--version"]).output.startswith("melancia ")
