"""``melancia run``: the local pipeline on the embedded defaults, without a cluster.

The stages run as local processes in order; each stage is the same library call a Kubernetes Job
makes in the cluster path, and returns what it made (the splits, the run folder, the verdict), which
the next stage is given. The evaluation compares the fine-tuned run with the baseline
:func:`~melancia.evaluation.promotion.choose_baseline` picks, and a passing run is promoted with
:func:`~melancia.evaluation.promotion.promote`, as the evaluation Job and the operator do.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
import typing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from melancia.api.app import create_app
from melancia.api.config import APISettings
from melancia.api.server import serve_api
from melancia.api.store import Store
from melancia.config import ConfigError
from melancia.data.config import DataConfig
from melancia.data.pipeline import build_datasets
from melancia.data.summary import print_summary
from melancia.evaluation.config import EvalConfig
from melancia.evaluation.pipeline import EvalOutcome, run_evaluation
from melancia.evaluation.promotion import Promotion, choose_baseline, promote
from melancia.export.merge import base_model_gguf
from melancia.providers.llama_cpp import LlamaCppProvider
from melancia.retrieval.index import KnowledgeIndex
from melancia.settings import get_settings
from melancia.tracking import read_run_record
from melancia.training.config import TrainConfig
from melancia.training.summary import print_training_summary
from melancia.training.trainer import TrainResult, output_dir_for, train

Stage = typing.Literal["data", "train", "index", "eval", "serve"]
STAGES: tuple[Stage, ...] = typing.get_args(Stage)

PLAN_QUESTIONS = ["O que é ACOS?", "Qual a diferença entre ACOS e ROAS?"]
"""Questions from the plan asked to the base and the fine-tuned model at the end of a run."""


@dataclass
class RunConfig:
    """Configs of every stage of a local run."""

    stages: list[Stage] = field(default_factory=lambda: list(STAGES))
    """Stages to run, in pipeline order."""
    data: DataConfig = field(default_factory=DataConfig)
    """The data stage (see configs/data/default.yaml)."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """The training stage (see configs/train/smollm2-cpu.yaml)."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """The evaluation stage: fine-tuned vs base on the held-out split (see configs/eval/default.yaml)."""
    docs_dir: Path = Path("data/corpus")
    """Documents the index stage indexes (MELANCIA_HOME/index; MELANCIA_CHROMA_URL for a Chroma server)."""
    compare_questions: list[str] = field(default_factory=lambda: list(PLAN_QUESTIONS))
    """Asked to the base and the fine-tuned model (through llama.cpp) after training."""
    router_config: Path = Path("configs/router.yaml")
    """Router the serve stage serves (the promoted model through the registry alias ``champion``)."""
    predictor_port: int = 8080
    """Port of the KServe predictor started by the serve stage."""
    api_port: int = 8000
    """Port of the API gateway the serve stage puts in front of the predictor."""

    def __post_init__(self) -> None:
        if not self.stages:
            raise ConfigError("stages: expected at least one of " + ", ".join(STAGES), field="stages")


@dataclass
class RunOutputs:
    """What the stages of one run made, each given to the stages after it."""

    datasets: Path | None = None
    """The data stage's splits (train, valid, heldout)."""
    training: TrainResult | None = None
    evaluation: EvalOutcome | None = None
    promotion: Promotion | None = None
    """Set when the evaluation passed and the run's version became the champion."""


def run_local(config: RunConfig, *, allow_rejects: bool = False, serve: bool = True,
              console: Console | None = None) -> int:
    """Run the configured stages in pipeline order: data, train, index, eval, then serve (blocking).

    Returns the exit code of the serve stage (0 when it is skipped). ``config`` is left as it was.
    """
    console = console or Console()
    outputs = RunOutputs()
    if "data" in config.stages:
        outputs.datasets = _data_stage(config, allow_rejects, console)
    if "train" in config.stages:
        outputs.training = _train_stage(config, outputs.datasets, console)
    if "index" in config.stages:
        _index_stage(config, console)
    if "eval" in config.stages:
        outputs.evaluation, outputs.promotion = _eval_stage(config, outputs, console)
    if "serve" in config.stages:
        if not serve:
            console.print("not serving (--no-serve / MELANCIA_NO_SERVE=1); serve with "
                          f"`melancia serve predictor --config {config.router_config}` and `melancia serve`")
            return 0
        return _serve_stage(config, console)
    return 0


def _data_stage(config: RunConfig, allow_rejects: bool, console: Console) -> Path:
    console.rule("[bold]data: build, validate, dedupe, split")
    summary = build_datasets(config.data, allow_rejects=allow_rejects)
    print_summary(summary, console)
    return summary.out_dir


def _train_config(config: RunConfig, datasets: Path | None) -> TrainConfig:
    """The training config, reading the splits the data stage just wrote unless it names its own."""
    return dataclasses.replace(config.train, dataset_dir=config.train.dataset_dir or datasets)


def _train_stage(config: RunConfig, datasets: Path | None, console: Console) -> TrainResult:
    train_config = _train_config(config, datasets)
    console.rule(f"[bold]train: LoRA on {train_config.base_model}")
    result = train(train_config, console=console)
    print_training_summary(result, console)
    if result.exports is not None and result.exports.gguf is not None:
        compare_answers(train_config.base_model, result.exports.gguf, train_config.export.gguf_type,
                        config.compare_questions, train_config.system_prompt, console)
    return result


def _index_stage(config: RunConfig, console: Console) -> None:
    console.rule("[bold]index: knowledge base for retrieval (ChromaDB + BM25)")
    index = KnowledgeIndex(chroma_url=get_settings().chroma_url)
    summary = index.update(config.docs_dir)
    documents = len(summary.added) + len(summary.changed) + len(summary.unchanged)
    console.print(f"{summary.chunks} chunks from {documents} documents ({len(summary.added)} added, "
                  f"{len(summary.changed)} changed, {len(summary.removed)} removed) in {index.directory}")
    for hit in index.query(config.compare_questions[0], k=3) if config.compare_questions else []:
        console.print(f"  {hit.rank}. {hit.citation} ({hit.doc_id})", highlight=False)


def _eval_stage(config: RunConfig, outputs: RunOutputs, console: Console) -> tuple[EvalOutcome, Promotion | None]:
    """Evaluate the run against the baseline the promotion rule picks; promote it when the gate passes."""
    console.rule("[bold]eval: fine-tuned vs baseline on the held-out split, and the gate")
    train_config = _train_config(config, outputs.datasets)
    eval_config = config.eval
    if eval_config.dataset is None and train_config.dataset_dir is not None:
        eval_config = dataclasses.replace(eval_config, dataset=Path(train_config.dataset_dir) / "heldout.jsonl")
    run_dir = outputs.training.output_dir if outputs.training else output_dir_for(train_config)
    record = read_run_record(run_dir)
    baseline = choose_baseline(record) if record else train_config.base_model
    outcome = run_evaluation(eval_config, str(run_dir), baseline, console=console)
    promotion = None
    if outcome.verdict == "passed" and record is not None and record.registered_version:
        promotion = promote(record)
        console.print(f"promoted {promotion.describe()}", highlight=False)
    return outcome, promotion


def _serve_stage(config: RunConfig, console: Console) -> int:
    """The predictor as a child process, and the API in front of it, until Ctrl-C or SIGTERM."""
    console.rule("[bold]serve: KServe predictor and the API in front of it")
    predictor_url = f"http://127.0.0.1:{config.predictor_port}"
    predictor = subprocess.Popen([sys.executable, "-m", "melancia.cli", "serve", "predictor", "--config",
                                  str(config.router_config), "--port", str(config.predictor_port)])
    try:
        if not _wait_ready(predictor, f"{predictor_url}/v1/models/melancia"):
            return predictor.returncode or 1
        key = _session_key()
        console.print(f"predictor: {predictor_url} (v1 /v1/models/melancia:predict, v2 /v2/models/melancia/infer, "
                      f"OpenAI {predictor_url}/openai/v1)", highlight=False)
        console.print(f"API: http://127.0.0.1:{config.api_port} (chat page at /, docs at /docs); key for this "
                      f"session: {key}", highlight=False)
        console.print(f"  curl -s http://127.0.0.1:{config.api_port}/api/v1/query -H 'X-API-Key: {key}' "
                      "-H 'Content-Type: application/json' -d '{\"question\": \"O que é ACOS?\"}'", highlight=False)
        settings = APISettings(predictor_url=predictor_url)
        return serve_api(create_app(settings), port=config.api_port, grace_period_s=settings.grace_period_s)
    finally:
        predictor.terminate()
        predictor.wait(60)


def _wait_ready(process: Any, url: str, timeout_s: float = 600) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def _session_key() -> str:
    """A fresh free-tier key for this local session; keys of earlier sessions are revoked."""
    store = Store(APISettings().database_url)
    for old in store.list_keys(include_revoked=False):
        if old.name.startswith("local-session-"):
            store.revoke_key(old.id)
    return store.create_key(f"local-session-{datetime.now():%Y%m%d-%H%M%S}", "free")[1]


def compare_answers(base_ref: str, tuned_gguf: Path, file_type: str, questions: list[str], system_prompt: str,
                    console: Console) -> None:
    """Print base and fine-tuned answers side by side (both GGUF, through llama.cpp)."""
    base_gguf = base_model_gguf(base_ref, file_type)
    if base_gguf is None or not questions:
        return
    base, tuned = LlamaCppProvider(base_gguf, name="base"), LlamaCppProvider(tuned_gguf, name="fine-tuned")
    table = Table(title="base vs fine-tuned (greedy, llama.cpp)", show_lines=True, title_justify="left")
    table.add_column("question", ratio=1)
    table.add_column("base", ratio=3)
    table.add_column("fine-tuned", ratio=3)
    for question in questions:
        messages = [{"role": "system", "content": system_prompt}, {"role": "user", "content": question}]
        table.add_row(question, base.chat(messages, max_tokens=120).text.strip(),
                      tuned.chat(messages, max_tokens=120).text.strip())
    console.print(table)
