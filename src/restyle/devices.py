"""Choosing the compute device: one place, so no module hard-codes 'cuda'."""

from __future__ import annotations

import torch

from restyle.errors import DeviceError


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The device to run on: the one asked for, else CUDA when available, else the CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"device: not a device name: {device!r}") from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device: {device!r} requested but CUDA is not available here")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device: {device!r} requested but only {torch.cuda.device_count()} CUDA "
                "device(s) exist"
            )
    elif resolved.type == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError(f"device: {device!r} requested but MPS is not available here")
    elif resolved.type != "cpu":
        raise DeviceError(f"device: unsupported device type {resolved.type!r}")
    return resolved
