"""What every ``melancia`` sub-command shares: the two consoles, the option types used by more than one
command, the decorator that turns a user's error into one line and exit code 2, and the setup that keeps
library chatter out of the output. It imports nothing heavy, so ``melancia --help`` stays fast."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from melancia.errors import MelanciaError

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")]
SetOption = Annotated[list[str] | None, typer.Option("--set", help="Override a config field: key=value (repeatable).")]
RouterConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Router config (providers, tiers, A/B).")]


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


def quiet_libraries() -> None:
    """Keep library chatter (weight-loading bars, database setup notes) out of the command's output."""
    import os
    import warnings

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # libraries that draw tqdm bars directly (GGUF conversion)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
