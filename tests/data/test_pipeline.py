"""Round trip on a small fixture folder: build -> validate -> split, through the library and the CLI."""

import json
from pathlib import Path

import pytest

from melancia.data.config import DataConfig
from melancia.data.io import load_examples
from melancia.data.pipeline import RejectedRowsError, build_datasets
from melancia.data.validate import validate_files

FIXTURE = Path(__file__).parent / "fixture"


def config(tmp_path, **changes):
    values = dict(corpus_dir=FIXTURE / "posts", qa_paths=[FIXTURE / "qa"], heldout_paths=[FIXTURE / "heldout.jsonl"],
                  out_dir=tmp_path / "out", min_answer_words=5, valid_fraction=0.2, answer_token_budget=200)
    values.update(changes)
    return DataConfig(**values)


def test_rejected_rows_stop_the_build_with_their_location(tmp_path, tiny_tokenizer):
    with pytest.raises(RejectedRowsError, match=r"faq.csv:4: field 'question'"):
        build_datasets(config(tmp_path), tokenizer=tiny_tokenizer)
    assert not (tmp_path / "out").exists()


def test_round_trip_build_validate_split(tmp_path, tiny_tokenizer):
    summary = build_datasets(config(tmp_path), tokenizer=tiny_tokenizer, allow_rejects=True)
    out = tmp_path / "out"
    splits = {name: load_examples(out / f"{name}.jsonl") for name in ("train", "valid", "heldout")}
    assert [r["id"] for r in splits["heldout"]] == ["fx-eval-001"]
    train_ids = {r["id"] for r in splits["train"]} | {r["id"] for r in splits["valid"]}
    assert {"fx-001", "fx-003", "post-acos-basico-como-calcular-o-acos", "post-roas-o-que-e-um-bom-roas"} <= train_ids
    assert len(splits["valid"]) >= 1 and not {r["id"] for r in splits["train"]} & {r["id"] for r in splits["valid"]}
    for name in splits:  # what was written validates cleanly
        assert validate_files([out / f"{name}.jsonl"]).ok
    quarantine = load_examples(out / "quarantine.jsonl")
    assert [(Path(q["file"]).name, q["line"]) for q in quarantine] == [("faq.csv", 4)]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {name: len(records) for name, records in splits.items()}
    stats = json.loads((out / "stats.json").read_text())
    assert stats["train"]["examples"] == len(splits["train"]) and "lengths" not in stats["train"]["tokens"]
    assert (out / "stats.png").stat().st_size > 1000
    assert summary.stats["heldout"]["by_category"] == {"metricas": 1}


def test_leaking_training_rows_are_dropped_and_recorded(tmp_path, tiny_tokenizer):
    leak = tmp_path / "leak.jsonl"
    leak.write_text(json.dumps({"question": "Como se calcula o CPA de uma campanha?", "answer": "Custo dividido por pedidos.",
                                "category": "metricas"}) + "\n")
    summary = build_datasets(config(tmp_path, qa_paths=[leak], corpus_dir=None), tokenizer=tiny_tokenizer)
    assert summary.splits["train"] == [] and summary.splits["valid"] == []
    removed = load_examples(tmp_path / "out" / "removed.jsonl")
    assert removed[0]["kind"] == "leak" and removed[0]["of"] == "fx-eval-001"


def test_same_inputs_give_byte_identical_outputs(tmp_path, tiny_tokenizer):
    build_datasets(config(tmp_path), tokenizer=tiny_tokenizer, allow_rejects=True)
    first = {n: (tmp_path / "out" / f"{n}.jsonl").read_bytes() for n in ("train", "valid")}
    build_datasets(config(tmp_path), tokenizer=tiny_tokenizer, allow_rejects=True)
    assert first == {n: (tmp_path / "out" / f"{n}.jsonl").read_bytes() for n in ("train", "valid")}
