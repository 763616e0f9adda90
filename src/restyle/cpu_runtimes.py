"""The runtimes of exported networks on the CPU: onnxruntime (`onnx_export.OnnxTransformNet`,
portable) and OpenVINO (`OpenVinoTransformNet`, here), and which one `auto` picks.

On x86 CPUs with native bfloat16 (AVX512-BF16, AMX) OpenVINO's bf16 inference hint runs
Restyle's feed-forward networks about twice as fast as onnxruntime, at an output visually the
same as float32 (PSNR 31-35 dB for MicroAST, 52-56 dB for a MetaNet network;
`benchmarks/openvino_runtime.py`, `docs/fast.md`); in float32 it was no faster than
onnxruntime. It reads the same ONNX export onnxruntime runs (`onnx_export`).
"""

from __future__ import annotations

import functools
import os
import platform
import threading
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from restyle.devices import cpu_has_fast_bf16
from restyle.errors import RestyleError
from restyle.onnx_export import OnnxTransformNet

if TYPE_CHECKING:
    import openvino  # type: ignore[import-untyped]

OpenVinoPrecision = Literal["f32", "bf16"]
CpuRuntime = Literal["onnx", "openvino"]


@functools.cache
def _installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def auto_cpu_runtime() -> CpuRuntime | None:
    """The runtime `auto` runs exported networks with on this CPU: OpenVINO where it computes
    in bf16 natively (an x86 CPU with AVX512-BF16 or AMX, OpenVINO installed: twice as fast as
    onnxruntime at 640×360), else onnxruntime where installed (OpenVINO in float32 was no faster
    on the 2-core Zen 4, and slower on small frames), else None (PyTorch)."""
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    if x86 and cpu_has_fast_bf16() and _installed("openvino"):
        return "openvino"
    return "onnx" if _installed("onnxruntime") else None


def openvino_precision(precision: str) -> OpenVinoPrecision:
    """What OpenVINO computes in for a setup's `precision`: bf16 when asked, or for "auto" on a
    CPU with native bf16 (`devices.cpu_has_fast_bf16`, which `RESTYLE_CPU_BF16` overrides)."""
    if precision == "bfloat16" or (precision == "auto" and cpu_has_fast_bf16()):
        return "bf16"
    return "f32"


def exported_network(
    path: str | os.PathLike[str], runtime: CpuRuntime, precision: str
) -> OnnxTransformNet | OpenVinoTransformNet:
    """The exported network at `path` (ONNX) under `runtime`, for a setup's `precision`."""
    if runtime == "openvino":
        return OpenVinoTransformNet(path, precision=openvino_precision(precision))
    return OnnxTransformNet(path)


class OpenVinoTransformNet:
    """An exported transform network (`path`, ONNX) run by OpenVINO on the CPU, computing in
    `precision` ("f32", or "bf16": OpenVINO's inference precision hint, for CPUs with native
    bfloat16).

    It is compiled once, with the export's dynamic batch, height and width: compiling per shape
    cost 100-140 ms for each new photo size, where the dynamic model runs a new shape 20-50 ms
    slower once and then as fast as a static one (MicroAST, 2-core Zen 4). Calls may come from
    several threads (the service's lanes): each takes an inference request of its own from a
    pool.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, precision: OpenVinoPrecision = "f32"
    ) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise RestyleError(
                "runtime openvino: OpenVINO is not installed (pip install openvino)"
            ) from exc
        self.precision = precision
        config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
        try:
            self._compiled = ov.Core().compile_model(str(path), "CPU", config)
        except Exception as exc:  # OpenVINO raises its own untyped errors
            raise RestyleError(f"ONNX model {str(path)!r} does not load: {exc}") from exc
        self._idle: list[openvino.InferRequest] = []
        self._lock = threading.Lock()

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        array: np.ndarray[Any, Any] = image.detach().float().cpu().contiguous().numpy()
        with self._lock:
            request = self._idle.pop() if self._idle else self._compiled.create_infer_request()
        try:
            request.infer({0: array})
            out = np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True)
        finally:
            with self._lock:
                self._idle.append(request)
        return torch.from_numpy(out)
