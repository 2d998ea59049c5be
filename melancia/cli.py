"""The ``melancia`` command. Each subcommand parses its options and calls one library function."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from melancia import __version__
from melancia.errors import MelanciaError

app = typer.Typer(help="MelancIA: fine-tune, evaluate and serve a Retail Media Ads assistant.",
                  no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None)
data_app = typer.Typer(help="Build, validate, dedupe, split and describe ChatML datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
index_app = typer.Typer(help="Build, update, query and evaluate the knowledge index (ChromaDB + BM25).",
                        no_args_is_help=True)
app.add_typer(index_app, name="index")
serve_app = typer.Typer(help="Serve the API gateway (default) or the KServe predictor (`serve predictor`).")
app.add_typer(serve_app, name="serve")
keys_app = typer.Typer(help="Create, list and revoke API keys (only salted hashes are stored).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")]
SetOption = Annotated[list[str] | None, typer.Option("--set", help="Override a config field: key=value (repeatable).")]


def user_errors(func: F) -> F:
    """Turn the errors a user can act on into one clear line and exit code 2 (no traceback)."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MelanciaError as exc:
            console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        out.print(f"melancia {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False) -> None:
    """MelancIA command line."""
    _quiet_libraries()


def _quiet_libraries() -> None:
    """Keep library chatter (weight-loading bars, database setup notes) out of the command's output."""
    import os
    import warnings

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # libraries that draw tqdm bars directly (GGUF conversion)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)


# --------------------------------------------------------------------------- run


@app.command()
@user_errors
def run(config: ConfigOption = Path("configs/run/local.yaml"), set_: SetOption = None,
        allow_rejects: Annotated[bool, typer.Option(help="Continue when some input rows are rejected.")] = False,
        no_serve: Annotated[bool, typer.Option("--no-serve", envvar="MELANCIA_NO_SERVE",
                                               help="Stop before serving (for scripts).")] = False) -> None:
    """Run the local pipeline: data, training, index, evaluation with promotion, then serve the model."""
    from melancia.config import load_config
    from melancia.run import RunConfig, run_local

    raise typer.Exit(run_local(load_config(RunConfig, config, set_), allow_rejects=allow_rejects,
                               serve=not no_serve))


# --------------------------------------------------------------------------- train


@app.command()
@user_errors
def train(config: ConfigOption = Path("configs/train/smollm2-cpu.yaml"), set_: SetOption = None,
          resume: Annotated[bool, typer.Option(help="Continue from the newest checkpoint of the run.")] = False) -> None:
    """Fine-tune a chat model (LoRA/DoRA/QLoRA) on the splits; export adapter, merged model, GGUF, card."""
    from melancia.config import load_config
    from melancia.training.config import TrainConfig
    from melancia.training.summary import print_training_summary
    from melancia.training.trainer import train as run_training

    print_training_summary(run_training(load_config(TrainConfig, config, set_), resume=resume, console=out), out)


# --------------------------------------------------------------------------- ask and serve

RouterConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Router config (providers, tiers, A/B).")]


@app.command()
@user_errors
def ask(question: Annotated[str, typer.Argument(help="The question, in Portuguese.")],
        config: RouterConfigOption = Path("configs/router.yaml"), set_: SetOption = None,
        tier: Annotated[str | None, typer.Option(help="User tier (default: the config's default_tier).")] = None,
        user_id: Annotated[str | None, typer.Option(help="User id (sticky A/B arm).")] = None,
        max_tokens: Annotated[int | None, typer.Option(help="Longest answer in tokens.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the whole answer record as JSON.")] = False) -> None:
    """Ask the assistant through the router: the answer streams, then its sources and routing."""
    from melancia.router.ask import ask_and_print

    code = ask_and_print(question, config, set_ or [], tier=tier, user_id=user_id, max_tokens=max_tokens,
                         as_json=as_json, out=out, err=console)
    raise typer.Exit(code)


@serve_app.callback(invoke_without_command=True)
@user_errors
def serve_api(ctx: typer.Context,
              host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
              port: Annotated[int, typer.Option(help="HTTP port.")] = 8000,
              predictor_url: Annotated[str | None, typer.Option(
                  help="Answer through this KServe predictor (default: MELANCIA_API_PREDICTOR_URL, else the "
                       "router in process).")] = None) -> None:
    """Serve the REST API, OpenAI-compatible chat and the chat page (settings: MELANCIA_API_*)."""
    if ctx.invoked_subcommand is not None:
        return
    from melancia.api.app import create_app
    from melancia.api.config import APISettings
    from melancia.api.server import serve_api as serve

    settings = APISettings(**({"predictor_url": predictor_url} if predictor_url else {}))
    out.print(f"MelancIA API on http://{host}:{port} (chat page at /, docs at /docs)")
    raise typer.Exit(serve(create_app(settings), host=host, port=port, grace_period_s=settings.grace_period_s))


@serve_app.command("predictor")
@user_errors
def serve_predictor(config: RouterConfigOption = Path("configs/router.yaml"), set_: SetOption = None,
                    port: Annotated[int, typer.Option(help="HTTP port.")] = 8080,
                    reload_interval: Annotated[float, typer.Option(
                        help="Seconds between checks of the registry alias (0: reload only on request).")] = 0.0) -> None:
    """Start the KServe predictor (v1/v2 protocol and OpenAI chat completions) over the router."""
    from melancia.serving.server import serve_predictor as serve

    raise typer.Exit(serve(config, set_, port=port, reload_interval_s=reload_interval))


@keys_app.command("create")
@user_errors
def keys_create(name: Annotated[str, typer.Argument(help="A name for the key (unique).")],
                tier: Annotated[str, typer.Option(help="Tier of every request made with the key.")] = "free",
                scope: Annotated[list[str] | None, typer.Option(help="user (default) or admin; repeatable.")] = None) -> None:
    """Create a key and print it once (it cannot be shown again)."""
    from melancia.api.config import APISettings
    from melancia.api.store import Store

    key, plaintext = Store(APISettings().database_url).create_key(name, tier, scope or ["user"])
    console.print(f"created key {key.name!r} (tier {key.tier}, scopes {', '.join(key.scopes)}); "
                  "store it now, it is not shown again:", highlight=False)
    out.print(plaintext, highlight=False)


@keys_app.command("list")
@user_errors
def keys_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List keys (names, tiers, scopes, dates; never secrets)."""
    from rich.table import Table

    from melancia.api.config import APISettings
    from melancia.api.store import Store

    keys = [k.as_dict() for k in Store(APISettings().database_url).list_keys()]
    if as_json:
        out.print_json(json.dumps(keys))
        return
    table = Table("name", "id", "tier", "scopes", "created", "last used", "revoked")
    for k in keys:
        table.add_row(k["name"], k["id"], k["tier"], ",".join(k["scopes"]), str(k["created_at"])[:19],
                      str(k["last_used_at"] or "")[:19], str(k["revoked_at"] or "")[:19])
    out.print(table)


@keys_app.command("revoke")
@user_errors
def keys_revoke(name: Annotated[str, typer.Argument(help="Name or id of the key.")]) -> None:
    """Revoke a key: requests with it are refused from now on."""
    from melancia.api.config import APISettings
    from melancia.api.store import Store

    key = Store(APISettings().database_url).revoke_key(name)
    out.print(f"revoked key {key.name!r} ({key.id})", highlight=False)


@app.command()
def operator(namespace: Annotated[list[str] | None, typer.Option(
        help="Watch only this namespace (repeatable; default: all).")] = None) -> None:
    """Run the TrainingRun operator (kopf) against the cluster of the current kubeconfig."""
    from melancia.operator.__main__ import main as run_operator

    raise typer.Exit(run_operator([f"--namespace={n}" for n in namespace or []]))


# --------------------------------------------------------------------------- eval


@app.command("eval")
@user_errors
def eval_(model: Annotated[str, typer.Option(help="Candidate: .gguf, training run folder, BASE+ADAPTER, HF folder or id.")],
          baseline: Annotated[str | None, typer.Option(help="Model to compare with (same forms as --model).")] = None,
          dataset: Annotated[Path | None, typer.Option(help="ChatML JSONL; default MELANCIA_HOME/datasets/heldout.jsonl.")] = None,
          config: ConfigOption = Path("configs/eval/default.yaml"), set_: SetOption = None,
          out_dir: Annotated[Path | None, typer.Option("--out", help="Report folder; default MELANCIA_HOME/reports/eval-<time>.")] = None) -> None:
    """Evaluate a candidate (and a baseline) side by side; exit 1 when the gate fails."""
    from melancia.config import load_config
    from melancia.evaluation.config import EvalConfig
    from melancia.evaluation.pipeline import run_evaluation

    overrides = [*(set_ or []), *([f"dataset={dataset}"] if dataset else [])]
    outcome = run_evaluation(load_config(EvalConfig, config, overrides), model, baseline, out_dir=out_dir, console=out)
    if outcome.verdict == "failed":
        raise typer.Exit(1)


@app.command()
@user_errors
def promote(version: Annotated[str | None, typer.Option(help="Registered model version to promote.")] = None,
            run: Annotated[Path | None, typer.Option(help="Training run folder (its run.json names the version).")] = None,
            model_name: Annotated[str, typer.Option(help="Registered model name.")] = "melancia-assistant",
            alias: Annotated[str, typer.Option(help="Registry alias to move.")] = "champion") -> None:
    """Point the registry alias (champion) at a version whose evaluation passed the gate."""
    from melancia.evaluation.promotion import PromotionError, promote as promote_run
    from melancia.tracking import RunRecord, find_run_record

    if run is not None:
        record = find_run_record(run)
        if record is None:
            raise PromotionError(f"{run}: not a finished training run (no run.json)")
    elif version is not None:
        record = RunRecord(run_name=f"{model_name} v{version}", base_model="", registered_model=model_name,
                           registered_version=str(version))
    else:
        raise PromotionError("name the version: --version N, or --run FOLDER of a registered training run")
    out.print(promote_run(record, alias=alias).describe())


# --------------------------------------------------------------------------- index

DocsOption = Annotated[Path, typer.Option("--docs", help="Folder of Markdown/HTML/text documents.")]
IndexDirOption = Annotated[Path | None, typer.Option("--dir", help="Index folder (default MELANCIA_HOME/index).")]
ChromaOption = Annotated[str | None, typer.Option("--chroma-url", help="Chroma server URL (default: embedded; "
                                                                      "env MELANCIA_CHROMA_URL).")]


def _index(directory: Path | None, chroma_url: str | None) -> Any:
    from melancia.retrieval.index import KnowledgeIndex
    from melancia.settings import get_settings

    return KnowledgeIndex(directory, chroma_url=chroma_url or get_settings().chroma_url)


def _print_update(summary: Any, verb: str) -> None:
    out.print(f"{verb}: {len(summary.added)} added, {len(summary.changed)} changed, {len(summary.removed)} removed, "
              f"{len(summary.unchanged)} unchanged documents; {summary.chunks} chunks")


@index_app.command("build")
@user_errors
def index_build(docs: DocsOption = Path("data/corpus"), directory: IndexDirOption = None,
                chroma_url: ChromaOption = None) -> None:
    """Index a folder of documents from scratch (dense + BM25)."""
    _print_update(_index(directory, chroma_url).build(docs), "built")


@index_app.command("update")
@user_errors
def index_update(docs: DocsOption = Path("data/corpus"), directory: IndexDirOption = None,
                 chroma_url: ChromaOption = None) -> None:
    """Add new, replace changed and remove deleted documents; unchanged ones are skipped."""
    _print_update(_index(directory, chroma_url).update(docs), "updated")


@index_app.command("query")
@user_errors
def index_query(text: Annotated[str, typer.Argument(help="The question.")],
                k: Annotated[int, typer.Option("-k", help="How many chunks.")] = 5,
                mode: Annotated[str, typer.Option(help="hybrid | dense | bm25")] = "hybrid",
                category: Annotated[str | None, typer.Option(help="Only chunks of this category.")] = None,
                directory: IndexDirOption = None, chroma_url: ChromaOption = None,
                as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The best chunks for a question, with their sources for citation."""
    from dataclasses import asdict

    from melancia.config import ConfigError

    if mode not in ("hybrid", "dense", "bm25"):
        raise ConfigError(f"--mode: expected hybrid, dense or bm25, got {mode!r}")
    hits = _index(directory, chroma_url).query(text, k, mode=mode, category=category)  # type: ignore[arg-type]
    if as_json:
        out.print_json(json.dumps([{**asdict(h), "citation": h.citation} for h in hits], ensure_ascii=False))
        return
    for hit in hits:
        out.print(f"[bold]{hit.rank}. {hit.citation}[/] ({hit.doc_id}, {hit.category}, score {hit.score:.4f})")
        out.print(f"   {hit.text[:300]}", highlight=False)


@index_app.command("stats")
@user_errors
def index_stats(directory: IndexDirOption = None, chroma_url: ChromaOption = None) -> None:
    """Documents, chunks and categories in the index."""
    out.print_json(json.dumps(_index(directory, chroma_url).stats(), ensure_ascii=False))


@index_app.command("eval")
@user_errors
def index_eval(queries: Annotated[Path, typer.Option(help="Labelled queries (JSONL: query, relevant doc ids).")]
               = Path("data/retrieval/queries.jsonl"),
               k: Annotated[int, typer.Option("-k", help="Cut-off for recall and MRR.")] = 5,
               out_dir: Annotated[Path | None, typer.Option("--out", help="Report folder.")] = None,
               directory: IndexDirOption = None, chroma_url: ChromaOption = None) -> None:
    """Recall@k and MRR of dense, BM25 and hybrid search on a labelled query set."""
    from melancia.retrieval.evaluation import evaluate_retrieval, load_queries, write_retrieval_report
    from melancia.settings import get_settings

    result = evaluate_retrieval(_index(directory, chroma_url), load_queries(queries), k)
    files = write_retrieval_report(result, out_dir or get_settings().paths.reports / "retrieval")
    for mode, row in result["modes"].items():
        out.print(f"{mode:7s} recall@{k} {row['recall_at_k']:.3f}  MRR {row['mrr']:.3f}")
    out.print(f"report: {files['md']}")


# --------------------------------------------------------------------------- data


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


TokenizerOption = Annotated[str, typer.Option(help="Tokenizer that measures lengths (hub id, dir, .gguf, packaged:NAME).")]


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
