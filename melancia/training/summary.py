"""The console summary printed at the end of training (a rich table)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from melancia.training.trainer import TrainResult


def print_training_summary(result: TrainResult, console: Console) -> None:
    state = result.state
    table = Table(title="training", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("steps", f"{state.step}" + (" (stopped early)" if result.stopped_early else ""))
    table.add_row("time", f"{state.seconds / 60:.1f} min, {state.trained_tokens / max(state.seconds, 1e-9):,.0f} "
                          "tokens/s")
    if result.first_eval_loss is not None and state.best_eval_loss is not None:
        change = 100 * (state.best_eval_loss - result.first_eval_loss) / result.first_eval_loss
        table.add_row("eval loss", f"{result.first_eval_loss:.4f} -> {state.best_eval_loss:.4f} ({change:+.1f}%), "
                                   f"best at step {state.best_step}")
    if result.final_train_loss is not None:
        table.add_row("last train loss", f"{result.final_train_loss:.4f}")
    exports = result.exports
    if exports is not None:
        table.add_row("adapter", str(exports.adapter))
        for label, path in (("merged", exports.merged), ("gguf", exports.gguf), ("Modelfile", exports.modelfile)):
            if path is not None:
                table.add_row(label, str(path))
    if result.card is not None:
        table.add_row("model card", str(result.card))
    if result.registered_version is not None:
        table.add_row("registered", f"version {result.registered_version}")
    console.print(table)
