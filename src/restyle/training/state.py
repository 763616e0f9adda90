"""Resumable training state: weights, Adam's moments and the step, in one safetensors file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from restyle.errors import WeightsError

FORMAT = "restyle.train_state"
FORMAT_VERSION = 1


def save_state(
    path: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    meta: dict[str, Any],
) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for index, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            tensors[f"optim.{index}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "step": str(step),
        "meta": json.dumps(meta),
    }
    partial = path.with_name(f".{path.name}.partial")
    save_file(tensors, str(partial), metadata=metadata)
    os.replace(partial, path)


def load_state(
    path: Path, *, model: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[int, dict[str, Any]]:
    """Restore `model` and `optimizer` in place; returns the step reached and the run's meta."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    except (OSError, SafetensorError) as exc:
        raise WeightsError(f"training state {str(path)!r}: unreadable ({exc})") from exc
    if metadata.get("format") != FORMAT or metadata.get("format_version") != str(FORMAT_VERSION):
        raise WeightsError(f"training state {str(path)!r}: not a Restyle training state")
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    optim_state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            optim_state.setdefault(int(index), {})[name] = value
    try:
        model.load_state_dict(model_state, strict=True)
        groups = optimizer.state_dict()["param_groups"]
        optimizer.load_state_dict({"state": optim_state, "param_groups": groups})
    except (RuntimeError, ValueError, KeyError) as exc:
        raise WeightsError(
            f"training state {str(path)!r}: does not fit this model ({exc})"
        ) from exc
    return int(metadata["step"]), json.loads(metadata.get("meta", "{}"))
