"""A training run's checkpoints: the resumable state beside the model, and resuming from it.

`out_dir` holds `model.safetensors` (what `--style` loads; the task writes it) and
`train_state.safetensors` (weights, Adam's moments, the step and what was trained: what
`resume` continues from, refused when it was trained for another task).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from restyle.errors import InvalidParameterError
from restyle.training.config import TrainConfig, as_dict
from restyle.training.state import load_state, save_state
from restyle.training.task import TrainingTask, same_task

MODEL_FILE = "model.safetensors"
STATE_FILE = "train_state.safetensors"


def resume_step(
    out_dir: Path,
    task: TrainingTask,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    steps: int,
) -> int:
    """Load `out_dir`'s state into `model`, `optimizer` and `task`; the step it had reached.

    InvalidParameterError when there is none, when it was trained for another task, or when it
    has already reached `steps`.
    """
    path = out_dir / STATE_FILE
    if not path.is_file():
        raise InvalidParameterError(f"resume: no training state at {path}")
    step, meta = load_state(path, model=model, optimizer=optimizer)
    if not same_task(meta.get("task"), task.describe(), task.loss_config):
        raise InvalidParameterError(
            f"resume: {path} was trained for a different style, network or loss; "
            "use a new --out directory"
        )
    restore = getattr(task, "restore_training_state", None)
    if restore is not None and isinstance(meta.get("task_state"), dict):
        restore(meta["task_state"])
    if step >= steps:
        raise InvalidParameterError(
            f"resume: {path} has already reached step {step} of {steps}; "
            "raise --steps to train further"
        )
    return step


def save_training_state(
    out_dir: Path,
    task: TrainingTask,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    step: int,
    config: TrainConfig,
) -> None:
    """Write the state `resume_step` reads: the weights, Adam's moments, the step and the task."""
    save_state(
        out_dir / STATE_FILE,
        model=model,
        optimizer=optimizer,
        step=step,
        meta={
            "task": task.describe(),
            "train": as_dict(config),
            # What the task adapted while training (a content weight's factor), if anything.
            "task_state": getattr(task, "training_state", dict)(),
        },
    )
