"""Resumable training checkpoints, written so that a kill at any moment never leaves a broken one.

A checkpoint is a folder ``checkpoints/step-000040`` holding the trainable (adapter) weights, the
optimizer and scheduler states, the random number generator states and the trainer's progress.
It is written into a temporary folder and renamed into place, so the newest folder that exists is
always complete. Only the adapter weights are saved, never the frozen base.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from melancia.errors import TrainingSetupError

STEP_DIR = re.compile(r"^step-(\d{6,})$")


@dataclass
class TrainerState:
    """Where the run is: enough to continue exactly."""

    step: int = 0
    best_eval_loss: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    trained_tokens: int = 0
    seconds: float = 0.0
    mlflow_run_id: str | None = None
    plan_fingerprint: str = ""
    history: list[dict[str, float]] = field(default_factory=list)


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The parameters that training changes (adapter weights), detached on CPU."""
    return {name: p.detach().cpu().clone() for name, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    missing = [n for n, p in params.items() if p.requires_grad and n not in weights]
    if missing:
        raise TrainingSetupError(f"checkpoint lacks {len(missing)} trainable weights (e.g. {missing[0]}); "
                         "it was written for another adapter configuration")
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value.to(params[name].device))


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(root: Path, state: TrainerState, model: torch.nn.Module, optimizer: Any, scheduler: Any,
                    keep: int) -> Path:
    """Write ``root/step-NNNNNN`` atomically and drop the oldest beyond ``keep``."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{state.step:06d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    torch.save(trainable_state(model), tmp / "adapter.pt")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state(),
                "trainer": asdict(state)}, tmp / "state.pt")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and STEP_DIR.match(p.name) and (p / "state.pt").exists()]
    return sorted(found, key=lambda p: int(STEP_DIR.match(p.name).group(1)))


def latest_checkpoint(root: Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1] if found else None


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer: Any, scheduler: Any) -> TrainerState:
    """Restore weights, optimizer, scheduler and random generators; returns the trainer state."""
    load_trainable_state(model, torch.load(path / "adapter.pt", map_location="cpu", weights_only=True))
    saved = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    restore_rng(saved["rng"])
    return TrainerState(**saved["trainer"])
