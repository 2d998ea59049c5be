"""The top-level ``melancia`` commands of the model's life cycle: ``run`` (the whole local pipeline),
``train``, ``ask``, ``eval``, ``promote`` and ``operator``. Each parses its options and calls one library
function, imported inside the command so that ``melancia --help`` never loads torch or transformers;
:mod:`melancia.cli` registers them on the app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from melancia.cli.common import ConfigOption, RouterConfigOption, SetOption, console, out, user_errors


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


@user_errors
def train(config: ConfigOption = Path("configs/train/smollm2-cpu.yaml"), set_: SetOption = None,
          resume: Annotated[bool, typer.Option(help="Continue from the newest checkpoint of the run.")] = False) -> None:
    """Fine-tune a chat model (LoRA/DoRA/QLoRA) on the splits; export adapter, merged model, GGUF, card."""
    from melancia.config import load_config
    from melancia.training.config import TrainConfig
    from melancia.training.summary import print_training_summary
    from melancia.training.trainer import train as run_training

    print_training_summary(run_training(load_config(TrainConfig, config, set_), resume=resume, console=out), out)


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


def operator(namespace: Annotated[list[str] | None, typer.Option(
        help="Watch only this namespace (repeatable; default: all).")] = None) -> None:
    """Run the TrainingRun operator (kopf) against the cluster of the current kubeconfig."""
    from melancia.operator.__main__ import main as run_operator

    raise typer.Exit(run_operator([f"--namespace={n}" for n in namespace or []]))


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
