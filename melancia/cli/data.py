"""``melancia data``: build the ChatML train/valid/heldout splits from posts and Q&A files, and validate,
dedupe, split, describe and synthetically grow JSONL datasets. The data library, tokenizers and the
teacher provider are imported inside the commands, so ``melancia --help`` stays fast."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from melancia.cli.common import ConfigOption, SetOption, console, out, user_errors

data_app = typer.Typer(help="Build, validate, dedupe, split and describe ChatML datasets.", no_args_is_help=True)

TokenizerOption = Annotated[str, typer.Option(help="Tokenizer that measures lengths (hub id, dir, .gguf, packaged:NAME).")]


@data_app.command("build")
@user_errors
def data_build(config: ConfigOption = Path("configs/data/default.yaml"), set_: SetOption = None,
               allow_rejects: Annotated[bool, typer.Option(help="Continue when some input rows are rejected.")] = False) -> None:
    """Posts + Q&A files -> validated, deduplicated train/valid/heldout splits with stats."""
    from melancia.config import load_config
    from melancia.data.config import DataConfig
    from melancia.data.pipeline import build_datasets
    from melancia.data.summary import print_summary

    print_summary(build_datasets(load_config(DataConfig, config, set_), allow_rejects=allow_rejects), out)


@data_app.command("validate")
@user_errors
def data_validate(paths: Annotated[list[Path], typer.Argument(help="JSONL files or folders.")],
                  tokenizer: TokenizerOption = "packaged:smollm2",
                  max_tokens: Annotated[int, typer.Option(help="Longest example accepted, in tokens.")] = 1024,
                  quarantine: Annotated[Path, typer.Option(help="Where rejected rows are written.")] = Path("quarantine.jsonl"),
                  valid_out: Annotated[Path | None, typer.Option("--out", help="Also write the valid rows here.")] = None,
                  allow_rejects: Annotated[bool, typer.Option(help="Exit 0 even when rows were rejected.")] = False) -> None:
    """Check schema, encoding, length and ids; report each rejected row as file:line: reason."""
    from melancia.data.io import write_jsonl
    from melancia.data.tokens import chat_counter
    from melancia.data.validate import summary_line, validate_files, write_quarantine
    from melancia.models.loading import load_tokenizer

    report = validate_files(paths, count_tokens=chat_counter(load_tokenizer(tokenizer)), max_tokens=max_tokens)
    for rejection in report.rejected:
        console.print(str(rejection), highlight=False, markup=False)
    if report.rejected:
        write_quarantine(quarantine, report.rejected)
        console.print(f"{len(report.rejected)} rejected row(s) written to {quarantine}")
    if valid_out is not None:
        write_jsonl(valid_out, report.valid)
    out.print(summary_line(report), highlight=False)
    if report.rejected and not allow_rejects:
        raise typer.Exit(1)


@data_app.command("dedupe")
@user_errors
def data_dedupe(paths: Annotated[list[Path], typer.Argument(help="JSONL files or folders.")],
                output: Annotated[Path, typer.Option("--out", help="Deduplicated JSONL.")],
                against: Annotated[list[Path] | None, typer.Option(help="Held-out files: drop rows whose question leaks into them.")] = None,
                threshold: Annotated[float, typer.Option(help="Near-duplicate Jaccard threshold.")] = 0.8) -> None:
    """Remove exact and near duplicates (and leaks into held-out files)."""
    from melancia.data.dedupe import dedupe, remove_leaks
    from melancia.data.io import write_jsonl

    records = _load_valid(paths)
    kept, removed = dedupe(records, threshold)
    if against:
        kept, leaks = remove_leaks(kept, _load_valid(against), threshold)
        removed += leaks
    for item in removed:
        console.print(str(item), highlight=False, markup=False)
    write_jsonl(output, kept)
    out.print(json.dumps({"input": len(records), "kept": len(kept), "removed": len(removed)}))


@data_app.command("split")
@user_errors
def data_split(paths: Annotated[list[Path], typer.Argument(help="JSONL files or folders.")],
               out_dir: Annotated[Path, typer.Option(help="Folder for <names>.jsonl.")],
               fraction: Annotated[float, typer.Option(help="Share of each category in the second split.")] = 0.2,
               seed: Annotated[int, typer.Option(help="Seed; same seed and data give the same split.")] = 42,
               names: Annotated[str, typer.Option(help="Names of the two splits, comma-separated.")] = "train,eval") -> None:
    """Seeded split stratified by category, near-duplicate questions kept on one side."""
    from melancia.data.io import write_jsonl
    from melancia.data.split import split

    first, second = (n.strip() for n in names.split(",", 1))
    kept, held = split(_load_valid(paths), fraction, seed)
    write_jsonl(out_dir / f"{first}.jsonl", kept)
    write_jsonl(out_dir / f"{second}.jsonl", held)
    out.print(json.dumps({first: len(kept), second: len(held)}))


@data_app.command("stats")
@user_errors
def data_stats(paths: Annotated[list[Path], typer.Argument(help="JSONL files (one split each) or folders.")],
               out_dir: Annotated[Path, typer.Option(help="Folder for stats.json and stats.png.")] = Path("."),
               tokenizer: TokenizerOption = "packaged:smollm2") -> None:
    """Counts per category and source, token lengths; JSON and a PNG histogram."""
    from melancia.data.io import expand_inputs
    from melancia.data.stats import describe, write
    from melancia.data.tokens import chat_counter
    from melancia.models.loading import load_tokenizer

    counter = chat_counter(load_tokenizer(tokenizer))
    splits = {p.stem: describe(_load_valid([p]), counter) for p in expand_inputs(paths, (".jsonl",))}
    out.print_json(data=write(splits, out_dir))


@data_app.command("synth")
@user_errors
def data_synth(base_url: Annotated[str, typer.Option(help="OpenAI-compatible endpoint of the teacher, e.g. http://localhost:11434/v1.")],
               model: Annotated[str, typer.Option(help="Teacher model name at that endpoint.")],
               output: Annotated[Path | None, typer.Option("--out", help="JSONL to write (default MELANCIA_HOME/datasets/synthetic.jsonl).")] = None,
               api_key_env: Annotated[str, typer.Option(help="Environment variable holding the API key.")] = "OPENAI_API_KEY",
               config: ConfigOption = Path("configs/data/default.yaml"), set_: SetOption = None,
               paraphrases: Annotated[int, typer.Option(help="Paraphrases per curated question.")] = 2,
               per_section: Annotated[int, typer.Option(help="New Q&A pairs per corpus section.")] = 2,
               limit: Annotated[int | None, typer.Option(help="Use only the first N curated examples and documents.")] = None) -> None:
    """Grow the training set with a teacher model (source: synthetic; validated, deduped, never in eval)."""
    from melancia.config import load_config
    from melancia.data.config import DataConfig
    from melancia.data.synth import grow
    from melancia.providers.openai_http import OpenAICompatibleProvider
    from melancia.settings import get_settings

    teacher = OpenAICompatibleProvider(base_url=base_url, model=model, name="teacher", api_key_env=api_key_env)
    target = output or get_settings().paths.datasets / "synthetic.jsonl"
    result = grow(teacher, load_config(DataConfig, config, set_), target, paraphrases_per_example=paraphrases,
                  questions_per_section=per_section, limit=limit)
    for line in result.failures + result.rejected:
        console.print(line, highlight=False, markup=False)
    out.print(json.dumps({"written": len(result.examples), "failed_requests": len(result.failures),
                          "rejected": len(result.rejected), "removed": len(result.removed), "out": str(target)}))


def _load_valid(paths: list[Path]) -> list[dict[str, Any]]:
    """Rows of already-validated files; any invalid row stops the command with its location."""
    from melancia.data.io import DataError
    from melancia.data.validate import validate_files

    report = validate_files(paths)
    if report.rejected:
        raise DataError("\n".join(str(r) for r in report.rejected) + "\n(run melancia data validate first)")
    return report.valid
