"""The supervised fine-tuning loop: packed batches, per-token loss, eval, checkpoints, tracking, export.

One optimizer step consumes ``gradient_accumulation_steps`` packed micro-batches per process. Each
micro-batch contributes ``sum of token losses / trainable tokens of the whole step``, so the
gradient is the per-token mean over the step however the tokens fall into micro-batches (under
DDP, which averages gradients across processes, the loss is scaled by the world size to match).
The plan of steps is fixed in advance (:mod:`melancia.training.batches`), which makes ``resume``
replay the same data order; with the optimizer, scheduler and RNG states restored, a resumed run
ends where an uninterrupted one does. What the loop runs on (model, data, optimizer, the state to start
from) is built by :mod:`melancia.training.prepare`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from melancia.config import to_dict
from melancia.settings import get_settings
from melancia.tracking import OUTPUT_DIR_TAG, RUN_RECORD, RunRecord, tracked_run
from melancia.training import checkpoint as ckpt
from melancia.training.batches import Step, eval_batches, make_batch
from melancia.training.card import CardFacts, write_card
from melancia.training.config import TrainConfig
from melancia.training.loss import PackedLMLoss
from melancia.training.model import trainable_parameters
from melancia.training.outputs import Exports, export_all
from melancia.training.prepare import PreparedRun, prepare_run, restore_or_start


@dataclass
class TrainResult:
    """Everything a caller needs after training."""

    output_dir: Path
    state: ckpt.TrainerState
    exports: Exports | None
    first_eval_loss: float | None
    final_train_loss: float | None
    stopped_early: bool
    registered_version: str | None = None
    card: Path | None = None
    history: list[dict[str, float]] = field(default_factory=list)


def output_dir_for(config: TrainConfig) -> Path:
    return Path(config.output_dir) if config.output_dir else get_settings().paths.runs / config.run_name


def dataset_dir_for(config: TrainConfig) -> Path:
    return Path(config.dataset_dir) if config.dataset_dir else get_settings().paths.datasets


def train(config: TrainConfig, *, resume: bool = False, console: Console | None = None) -> TrainResult:
    """Fine-tune ``config.base_model`` on the splits; returns where everything went."""
    run = prepare_run(config, console or Console(), resume, dataset_dir=dataset_dir_for(config),
                      output_dir=output_dir_for(config))
    state = restore_or_start(run, resume)

    tracking = (tracked_run(config.tracking.experiment, config.run_name, uri=config.tracking.tracking_uri,
                            run_id=state.mlflow_run_id, tags={"melancia.stage": "train"})
                if run.main else nullcontext(None))
    with tracking as tracker:
        if tracker is not None:
            state.mlflow_run_id = tracker.run_id
            tracker.log_params(_params(run))
        result = _loop(run, state, tracker)
        if run.main:
            _finish(run, result, tracker)
    run.accelerator.wait_for_everyone()
    return result


def _params(run: PreparedRun) -> dict[str, Any]:
    trainable, total = trainable_parameters(run.model)
    return {**to_dict(run.config), "derived": {
        "steps": len(run.steps), "train_examples": len(run.train_split.examples),
        "train_tokens": run.train_split.tokens, "truncated": run.train_split.truncated,
        "dropped": run.train_split.dropped, "world_size": run.accelerator.num_processes,
        "device": str(run.placement.device), "precision": run.placement.precision,
        "trainable_parameters": trainable, "total_parameters": total}}


# --------------------------------------------------------------------------- the loop


def _loop(run: PreparedRun, state: ckpt.TrainerState, tracker: Any) -> TrainResult:
    first_eval = next((h["eval_loss"] for h in state.history if "eval_loss" in h), None)
    if state.step == 0 and run.valid_split is not None:
        first_eval = _evaluate(run)
        state.history.append({"step": 0, "eval_loss": first_eval})
        _log(tracker, {"eval_loss": first_eval}, 0)
        if run.main:
            run.console.print(f"eval loss before training: {first_eval:.4f}")
    stopped_early, last_loss = False, None
    with _progress(run) as progress:
        task = progress.add_task("training", total=len(run.steps), completed=state.step, loss="-", tps="-")
        started = time.perf_counter() - state.seconds
        for index in range(state.step, len(run.steps)):
            last_loss, grad_norm = _train_step(run, run.steps[index])
            state.step = index + 1
            state.trained_tokens += run.steps[index].tokens
            state.seconds = time.perf_counter() - started
            tps = state.trained_tokens / max(state.seconds, 1e-9)
            progress.update(task, completed=state.step, loss=f"{last_loss:.4f}", tps=f"{tps:,.0f}")
            _log_line(run, state, last_loss, tps)
            metrics = {"train_loss": last_loss, "learning_rate": run.scheduler.get_last_lr()[0],
                       "grad_norm": grad_norm, "tokens_per_second": tps}
            state.history.append({"step": state.step, "train_loss": last_loss})
            if _eval_due(run, state):
                stopped_early = _eval_and_keep_best(run, state, metrics)
            _log(tracker, metrics, state.step)
            if stopped_early:
                run.console.print(f"[yellow]early stop: no eval improvement in "
                                  f"{run.config.early_stopping_patience} evaluations")
                break
            if state.step % run.config.save_every == 0 and state.step < len(run.steps):
                _checkpoint(run, state)
    return TrainResult(run.output_dir, state, None, first_eval, last_loss, stopped_early, history=state.history)


def _eval_due(run: PreparedRun, state: ckpt.TrainerState) -> bool:
    """Every ``eval_every`` steps, and at the end unless an eval ran less than half an interval ago."""
    every = run.config.eval_every
    if state.step % every == 0:
        return True
    return state.step == len(run.steps) and state.step % every >= max(1, every // 2)


def _train_step(run: PreparedRun, step: Step) -> tuple[float, float]:
    accelerator, world = run.accelerator, run.accelerator.num_processes
    micro_batches = step.for_rank(accelerator.process_index, world)
    summed = torch.zeros((), device=accelerator.device)
    for position, indices in enumerate(micro_batches):
        batch = make_batch([run.train_split.examples[i] for i in indices]).to(accelerator.device)
        syncing = position == len(micro_batches) - 1
        with nullcontext() if syncing else accelerator.no_sync(run.loss_module):
            loss_sum = run.loss_module(batch.input_ids, batch.position_ids, batch.targets, batch.cu_seq_lens,
                                       batch.max_length)
            accelerator.backward(loss_sum * (world / step.trainable))
        summed += loss_sum.detach()
    grad_norm = float("nan")
    if run.config.max_grad_norm > 0:
        grad_norm = float(accelerator.clip_grad_norm_(run.loss_module.parameters(), run.config.max_grad_norm))
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    total = accelerator.reduce(summed, reduction="sum") if world > 1 else summed
    return float(total) / step.trainable, grad_norm


@torch.no_grad()
def _evaluate(run: PreparedRun) -> float:
    """Mean per-token loss of the assistant tokens of the validation split."""
    assert run.valid_split is not None
    accelerator = run.accelerator
    run.loss_module.eval()
    loss = torch.zeros((), device=accelerator.device, dtype=torch.float64)
    tokens = torch.zeros((), device=accelerator.device, dtype=torch.float64)
    packs = eval_batches(run.valid_split, run.config.tokens_per_batch)
    for indices in packs[accelerator.process_index::accelerator.num_processes]:
        batch = make_batch([run.valid_split.examples[i] for i in indices]).to(accelerator.device)
        loss += _unwrap_loss(run).batch_loss(batch).double()
        tokens += batch.trainable
    run.loss_module.train()
    if accelerator.num_processes > 1:
        loss, tokens = accelerator.reduce(loss, "sum"), accelerator.reduce(tokens, "sum")
    return float(loss / tokens)


def _unwrap_loss(run: PreparedRun) -> PackedLMLoss:
    return run.accelerator.unwrap_model(run.loss_module)


def _eval_and_keep_best(run: PreparedRun, state: ckpt.TrainerState, metrics: dict[str, float]) -> bool:
    """Evaluate, save the best adapter, and say whether patience has run out."""
    if run.valid_split is None:
        return False
    eval_loss = _evaluate(run)
    metrics["eval_loss"] = eval_loss
    state.history.append({"step": state.step, "eval_loss": eval_loss})
    improved = state.best_eval_loss is None or eval_loss < state.best_eval_loss - 1e-4
    if improved:
        state.best_eval_loss, state.best_step, state.evals_without_improvement = eval_loss, state.step, 0
        if run.main:
            _save_best(run)
    else:
        state.evals_without_improvement += 1
    if run.main:
        mark = " (best)" if improved else ""
        run.console.print(f"step {state.step}: eval loss {eval_loss:.4f}{mark}")
    patience = run.config.early_stopping_patience
    return bool(patience) and state.evals_without_improvement >= patience


def _save_best(run: PreparedRun) -> None:
    best = run.output_dir / "best"
    best.mkdir(parents=True, exist_ok=True)
    tmp = best / f".adapter.pt.{os.getpid()}"
    torch.save(ckpt.trainable_state(run.unwrapped_model()), tmp)
    os.replace(tmp, best / "adapter.pt")


def _checkpoint(run: PreparedRun, state: ckpt.TrainerState) -> None:
    if run.main:
        ckpt.save_checkpoint(run.checkpoints, state, run.unwrapped_model(), run.optimizer, run.scheduler,
                             run.config.keep_checkpoints)
    run.accelerator.wait_for_everyone()


def _log_line(run: PreparedRun, state: ckpt.TrainerState, loss: float, tps: float) -> None:
    """Plain progress lines where no live bar can be drawn (a Job's log is not a terminal)."""
    every = max(1, len(run.steps) // 20)
    if run.main and not run.console.is_terminal and (state.step % every == 0 or state.step == len(run.steps)):
        remaining = (len(run.steps) - state.step) * state.seconds / max(state.step, 1)
        run.console.print(f"step {state.step}/{len(run.steps)} loss {loss:.4f} {tps:,.0f} tok/s "
                          f"elapsed {state.seconds:.0f}s ETA {remaining:.0f}s", highlight=False)


def _log(tracker: Any, metrics: dict[str, float], step: int) -> None:
    if tracker is not None:
        tracker.log_metrics({k: v for k, v in metrics.items() if not math.isnan(v)}, step)


def _progress(run: PreparedRun) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[tps]} tok/s"),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=run.console,
                    disable=not (run.main and run.console.is_terminal), transient=False)


# --------------------------------------------------------------------------- the end


def _finish(run: PreparedRun, result: TrainResult, tracker: Any) -> None:
    """Keep the best adapter, export, write the card, record artifacts and register the model."""
    state, model = result.state, run.unwrapped_model()
    best = run.output_dir / "best" / "adapter.pt"
    if state.best_step is not None and state.best_step != state.step and best.exists():
        ckpt.load_trainable_state(model, torch.load(best, map_location="cpu", weights_only=True))
        run.console.print(f"kept the best adapter (step {state.best_step}, eval loss {state.best_eval_loss:.4f})")
    model.set_attn_implementation("sdpa")
    result.exports = export_all(run.config, model, run.tokenizer, run.output_dir)
    result.card = write_card(run.output_dir / "README.md", run.config, _card_facts(run, result))
    shutil.copy2(result.card, result.exports.adapter / "README.md")
    _write_history(run.output_dir / "history.json", state.history)
    if tracker is not None:
        tracker.log_artifact(result.card)
        tracker.log_artifact(run.output_dir / "history.json")
        tracker.log_artifacts(result.exports.adapter, "adapter")
        tracker.set_tags({OUTPUT_DIR_TAG: str(run.output_dir)})
        if run.config.tracking.registered_model:
            result.registered_version = tracker.register(run.config.tracking.registered_model, "adapter",
                                                         description=f"{run.config.run_name}: base "
                                                                     f"{run.config.base_model}")
    _write_run_info(run, result, tracker)


def _write_run_info(run: PreparedRun, result: TrainResult, tracker: Any) -> None:
    """``run.json``: what later stages (evaluation, promotion) need to find this run."""
    from melancia.data.io import atomic_write_text

    record = RunRecord(
        run_name=run.config.run_name, base_model=run.config.base_model, mlflow_run_id=result.state.mlflow_run_id,
        tracking_uri=tracker.uri if tracker else None, experiment=run.config.tracking.experiment,
        registered_model=run.config.tracking.registered_model if result.registered_version else None,
        registered_version=result.registered_version,
        gguf=str(result.exports.gguf) if result.exports and result.exports.gguf else None)
    atomic_write_text(run.output_dir / RUN_RECORD, record.to_json())


def _card_facts(run: PreparedRun, result: TrainResult) -> CardFacts:
    trainable, total = trainable_parameters(run.model)
    manifest_path = dataset_dir_for(run.config) / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else None
    state = result.state
    return CardFacts(
        train_examples=len(run.train_split.examples), train_tokens=run.train_split.tokens,
        valid_examples=len(run.valid_split.examples) if run.valid_split else 0, steps=state.step,
        trained_tokens=state.trained_tokens, seconds=state.seconds, trainable_parameters=trainable,
        total_parameters=total, precision=run.placement.precision, device=str(run.placement.device),
        first_eval_loss=result.first_eval_loss, best_eval_loss=state.best_eval_loss, best_step=state.best_step,
        final_train_loss=result.final_train_loss, stopped_early=result.stopped_early, dataset_manifest=manifest)


def _write_history(path: Path, history: list[dict[str, float]]) -> None:
    from melancia.data.io import atomic_write_text

    atomic_write_text(path, json.dumps(history, indent=1))
