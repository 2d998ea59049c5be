import json
from pathlib import Path

import pytest

from melancia.data.io import DataError, atomic_write_text, load_examples
from melancia.data.tokens import chat_counter
from melancia.data.validate import validate_files, write_quarantine

GOOD = {"id": "g-{n}", "messages": [{"role": "user", "content": "Pergunta {n}?"},
                                    {"role": "assistant", "content": "Resposta {n}."}],
        "metadata": {"category": "metricas", "source": "t"}}


def good_line(n: int) -> str:
    return json.dumps(GOOD).replace("{n}", str(n))


def planted(tmp_path: Path) -> Path:
    path = tmp_path / "planted.jsonl"
    lines = [
        good_line(1).encode(),
        b'{"id": "broken", ',                                   # 2 malformed JSON
        good_line(3).encode(),
        b'["not", "an", "object"]',                             # 4 wrong type
        b"",                                                    # blank: skipped
        json.dumps({**GOOD, "id": "g-1"}).encode(),            # 6 duplicate id
        '{"id": "latin", "x": "pre\xe7o"}'.encode("latin-1"),   # 7 not UTF-8
        json.dumps({**GOOD, "id": "no-answer", "messages": GOOD["messages"][:1]}).encode(),  # 8
        good_line(9).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_planted_errors_reported_line_by_line_and_nothing_valid_lost(tmp_path):
    report = validate_files([planted(tmp_path)])
    assert [r["id"] for r in report.valid] == ["g-1", "g-3", "g-9"]
    by_line = {r.line: r.reason for r in report.rejected}
    assert sorted(by_line) == [2, 4, 6, 7, 8]
    assert "malformed JSON" in by_line[2]
    assert "expected a JSON object, got list" in by_line[4]
    assert "duplicate id 'g-1'" in by_line[6] and "planted.jsonl:1" in by_line[6]
    assert "not valid UTF-8" in by_line[7]
    assert "assistant" in by_line[8]
    assert str(report.rejected[0]).startswith(f"{tmp_path / 'planted.jsonl'}:2: ")


def test_quarantine_keeps_file_line_reason_and_raw(tmp_path):
    report = validate_files([planted(tmp_path)])
    write_quarantine(tmp_path / "q.jsonl", report.rejected)
    rows = load_examples(tmp_path / "q.jsonl")
    assert [r["line"] for r in rows] == [2, 4, 6, 7, 8]
    assert rows[0]["raw"] == '{"id": "broken", '
    assert all(r["file"].endswith("planted.jsonl") for r in rows)


def test_too_long_examples_are_rejected_with_their_length(tmp_path, tiny_tokenizer):
    path = tmp_path / "long.jsonl"
    long = {**GOOD, "id": "long", "messages": [{"role": "user", "content": "ACOS " * 200},
                                              {"role": "assistant", "content": "ok"}]}
    path.write_text(good_line(1) + "\n" + json.dumps(long) + "\n")
    report = validate_files([path], count_tokens=chat_counter(tiny_tokenizer), max_tokens=64)
    assert [r["id"] for r in report.valid] == ["g-1"]
    assert "too long" in report.rejected[0].reason and "at most 64" in report.rejected[0].reason


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.jsonl", "no such file or directory"),
    (lambda p: (p / "empty.jsonl").write_text("\n\n") and p / "empty.jsonl", "file is empty"),
    (lambda p: (p / "nothing").mkdir() or p / "nothing", "directory holds no .jsonl files"),
])
def test_unusable_inputs_give_clear_errors(tmp_path, make, message):
    with pytest.raises(DataError, match=message):
        validate_files([make(tmp_path)])


def test_folders_are_searched_recursively(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "one.jsonl").write_text(good_line(1) + "\n")
    (tmp_path / "a" / "b" / "two.jsonl").write_text(good_line(2) + "\n")
    assert len(validate_files([tmp_path / "a"]).valid) == 2


def test_atomic_write_leaves_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")

    def crash(fd):
        raise KeyboardInterrupt  # the user hits Ctrl-C while the new content is being flushed

    monkeypatch.setattr("melancia.data.io.os.fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "new content\n" * 1000)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_load_examples_refuses_a_damaged_split(tmp_path):
    path = tmp_path / "split.jsonl"
    path.write_text(good_line(1) + "\n{oops\n")
    with pytest.raises(DataError, match=r"split.jsonl:2: malformed JSON"):
        load_examples(path)
