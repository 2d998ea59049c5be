"""``melancia run``: the local pipeline on the embedded defaults, without a cluster.

The stages run as local processes in order; each stage is the same library call a Kubernetes Job
makes in the cluster path.
"""

from __future__ import annotations

import typing
from typing import Any
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from melancia.config import ConfigError
from melancia.data.config import DataConfig
from melancia.data.pipeline import build_datasets
from melancia.data.report import print_summary
from melancia.evaluation.config import EvalConfig
from melancia.training.config import TrainConfig

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


def run_local(config: RunConfig, *, allow_rejects: bool = False, serve: bool = True,
              console: Console | None = None) -> int:
    """Run the configured stages in pipeline order: data, train, index, eval, then serve (blocking).

    Returns the exit code of the serve stage (0 when it is skipped).
    """
    console = console or Console()
    if "data" in config.stages:
        _data_stage(config, allow_rejects, console)
    if "train" in config.stages:
        _train_stage(config, console)
    if "index" in config.stages:
        _index_stage(config, console)
    if "eval" in config.stages:
        _eval_stage(config, console)
    if "serve" in config.stages:
        if not serve:
            console.print("not serving (--no-serve / MELANCIA_NO_SERVE=1); serve with "
                          f"`melancia serve predictor --config {config.router_config}` and `melancia serve`")
            return 0
        return _serve_stage(config, console)
    return 0


def _data_stage(config: RunConfig, allow_rejects: bool, console: Console) -> None:
    console.rule("[bold]data: build, validate, dedupe, split")
    summary = build_datasets(config.data, allow_rejects=allow_rejects)
    print_summary(summary, console)
    config.train.dataset_dir = config.train.dataset_dir or summary.out_dir


def _train_stage(config: RunConfig, console: Console) -> None:
    from melancia.training.report import print_training_summary
    from melancia.training.trainer import train

    console.rule(f"[bold]train: LoRA on {config.train.base_model}")
    result = train(config.train, console=console)
    print_training_summary(result, console)
    if result.exports is not None and result.exports.gguf is not None:
        compare_answers(config.train.base_model, result.exports.gguf, config.train.export.gguf_type,
                        config.compare_questions, config.train.system_prompt, console)


def _index_stage(config: RunConfig, console: Console) -> None:
    from melancia.retrieval.index import KnowledgeIndex
    from melancia.settings import get_settings

    console.rule("[bold]index: knowledge base for retrieval (ChromaDB + BM25)")
    index = KnowledgeIndex(chroma_url=get_settings().chroma_url)
    summary = index.update(config.docs_dir)
    documents = len(summary.added) + len(summary.changed) + len(summary.unchanged)
    console.print(f"{summary.chunks} chunks from {documents} documents ({len(summary.added)} added, "
                  f"{len(summary.changed)} changed, {len(summary.removed)} removed) in {index.directory}")
    for hit in index.query(config.compare_questions[0], k=3) if config.compare_questions else []:
        console.print(f"  {hit.rank}. {hit.citation} ({hit.doc_id})", highlight=False)


def _eval_stage(config: RunConfig, console: Console) -> None:
    from melancia.evaluation.pipeline import run_evaluation
    from melancia.training.trainer import output_dir_for

    console.rule("[bold]eval: fine-tuned vs base on the held-out split, and the gate")
    if config.eval.dataset is None and config.train.dataset_dir is not None:
        config.eval.dataset = Path(config.train.dataset_dir) / "heldout.jsonl"
    run_dir = output_dir_for(config.train)
    outcome = run_evaluation(config.eval, str(run_dir), config.train.base_model, console=console)
    if outcome.verdict == "passed":
        _promote(run_dir, console)


def _promote(run_dir: Path, console: Console) -> None:
    from melancia.evaluation.promotion import candidate_run_info, promote

    info = candidate_run_info(str(run_dir))
    if not info.get("registered_version"):
        return
    previous = promote(info["registered_model"], info["registered_version"], tracking_uri=info.get("tracking_uri"))
    console.print(f"promoted {info['registered_model']} version {info['registered_version']} to 'champion'"
                  + (f" (was version {previous})" if previous else ""))


def _serve_stage(config: RunConfig, console: Console) -> int:
    """The predictor as a child process, and the API in front of it, until Ctrl-C or SIGTERM."""
    import subprocess
    import sys

    from melancia.api.app import create_app
    from melancia.api.config import APISettings
    from melancia.api.server import serve_api

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
    import time

    import httpx

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
    from datetime import datetime

    from melancia.api.config import APISettings
    from melancia.api.store import Store

    store = Store(APISettings().database_url)
    for old in store.list_keys(include_revoked=False):
        if old.name.startswith("local-session-"):
            store.revoke_key(old.id)
    return store.create_key(f"local-session-{datetime.now():%Y%m%d-%H%M%S}", "free")[1]


def compare_answers(base_ref: str, tuned_gguf: Path, file_type: str, questions: list[str], system_prompt: str,
                    console: Console) -> None:
    """Print base and fine-tuned answers side by side (both GGUF, through llama.cpp)."""
    from melancia.providers.llama_cpp import LlamaCppProvider
    from melancia.export.merge import base_model_gguf

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
