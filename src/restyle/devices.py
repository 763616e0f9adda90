"""Choosing the compute device: one place, so no module hard-codes 'cuda'."""

from __future__ import annotations

import os

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


# Set to 1 or 0 to force the CPU's bfloat16 choice either way (benchmarks, tests, a CPU that
# reports bf16 but runs it slowly).
CPU_BF16_ENV = "RESTYLE_CPU_BF16"
# oneDNN's cap on the instructions it uses; below AVX512_CORE_BF16 it emulates bf16 even on a CPU
# that has it (3.4x slower than float32 for VGG19 on a Xeon with AMX), so auto must not pick it.
ONEDNN_ISA_ENV = "ONEDNN_MAX_CPU_ISA"
_ONEDNN_ISAS_WITHOUT_BF16 = frozenset(
    {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}
)


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16).

    Where it does (AMD Zen 4, Intel Sapphire Rapids and later) bfloat16 autocast made VGG19
    forward+backward 1.7x faster than float32; where it does not, oneDNN emulates bf16 and
    autocast is slower. `RESTYLE_CPU_BF16=1` / `=0` overrides the detection; an
    `ONEDNN_MAX_CPU_ISA` below AVX512_CORE_BF16 counts as no bf16.
    """
    forced = os.environ.get(CPU_BF16_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    if os.environ.get(ONEDNN_ISA_ENV, "").strip().upper() in _ONEDNN_ISAS_WITHOUT_BF16:
        return False
    capabilities = torch.cpu.get_capabilities()
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `precision` ("auto", "float32", "bfloat16") on `device`.

    "auto" is bfloat16 on CUDA and on CPUs with native bf16, float32 (no autocast) elsewhere.
    """
    if precision == "float32":
        return None
    if precision == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda" or (device.type == "cpu" and cpu_has_fast_bf16()):
        return torch.bfloat16
    return None
