"""What the training loop asks of a task (what is learnt), and whether a saved state was
trained for the same one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from restyle.training.config import as_dict


class TrainingTask(Protocol):
    """What is learnt (`FastStyleTask`, `ArbitraryStyleTask`): the model, the loss of a batch,
    the samples a run writes, and how the model is saved."""

    engine: str
    loss_config: Any  # a dataclass whose defaults stand for options older states lack

    def describe(self) -> dict[str, Any]: ...

    def build_model(self) -> nn.Module: ...

    def setup(self, device: torch.device, *, image_size: int, channels_last: bool) -> None: ...

    def loss(
        self, model: nn.Module, photos: torch.Tensor, *, step: int, rank: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...

    def sample(self, model: nn.Module, photos: torch.Tensor) -> torch.Tensor: ...

    def save_model(
        self, path: str | os.PathLike[str], model: nn.Module, info: dict[str, Any]
    ) -> Path: ...


def same_task(saved: Any, current: dict[str, Any], loss_config: Any) -> bool:
    """Whether a saved state's task description is `current`'s. A loss option the state lacks
    was added to Restyle after it was written, so that run used the option's default."""
    if not isinstance(saved, dict) or not isinstance(saved.get("loss"), dict):
        return bool(saved == current)
    defaults = as_dict(type(loss_config)())
    return bool({**saved, "loss": {**defaults, **saved["loss"]}} == current)
