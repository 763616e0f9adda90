"""ONNX export of transform networks and an onnxruntime path for CPU inference.

The exported graph takes `image` (B, 3, H, W) float32 in [0, 1] with dynamic B, H and W and
returns `stylized` of the same shape (not clamped, like the PyTorch network).
"""

from __future__ import annotations

import io
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from restyle.errors import RestyleError

OPSET = 17
INPUT_NAME, OUTPUT_NAME = "image", "stylized"


def export_onnx(net: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write `net` as an ONNX model with dynamic batch, height and width; atomic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.rand(1, 3, 64, 64)
    buffer = io.BytesIO()
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        # The TorchScript-based exporter warns about its own deprecation and about instance
        # norm in eval mode (which is what we want); neither concerns the exported graph.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net.eval(),
            (example,),
            buffer,  # type: ignore[arg-type]  # the exporter writes to file-likes too
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes},
            opset_version=OPSET,
            dynamo=False,
        )
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(buffer.getvalue())
    os.replace(partial, path)
    return path


class OnnxTransformNet:
    """An exported transform network run by onnxruntime on the CPU."""

    def __init__(self, path: str | os.PathLike[str], *, threads: int = 0) -> None:
        try:
            import onnxruntime as ort  # type: ignore[import-untyped]
        except ImportError as exc:  # pragma: no cover - onnxruntime is a dependency
            raise RestyleError("runtime onnx: onnxruntime is not installed") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: one thread per physical core
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise RestyleError(f"ONNX model {str(path)!r} does not load: {exc}") from exc

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        array: np.ndarray[Any, Any] = image.detach().float().cpu().contiguous().numpy()
        (out,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: array})
        return torch.from_numpy(out)


def onnx_cache_dir() -> Path:
    """The folder of cached ONNX exports (`RESTYLE_CACHE_DIR`, else the user's cache)."""
    root = os.environ.get("RESTYLE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "restyle"
    )
    return Path(root) / "onnx"


def cached_onnx_path(sha256: str) -> Path:
    """Where the ONNX export of the checkpoint with this digest is cached."""
    return onnx_cache_dir() / f"{sha256[:32]}-opset{OPSET}.onnx"


def prune_onnx_cache(
    max_bytes: int, *, used: Path | None = None, keep_recent_s: float = 60.0
) -> list[Path]:
    """Bound the ONNX cache to `max_bytes`, least recently used first; returns what was removed.

    `used` is the export about to be served: its modification time is set to now (access times
    are unreliable: `noatime`, `relatime`), which is the recency the eviction sorts by, and it is
    never removed. Only finished exports (`*.onnx`) are candidates: `export_onnx` writes to a
    hidden `.partial` file and renames it, so a file being written is never seen. A file used
    in the last `keep_recent_s` is kept too, even over the bound, since another request may be
    about to open the path it was given (once open, a removed file still reads to its end).
    """
    if used is not None:
        os.utime(used)
    now = time.time()
    exports: list[tuple[float, int, Path]] = []
    for path in onnx_cache_dir().glob("*.onnx"):
        try:
            info = path.stat()
        except FileNotFoundError:  # removed by another process meanwhile
            continue
        exports.append((info.st_mtime, info.st_size, path))
    exports.sort(reverse=True)  # the most recently used first
    removed: list[Path] = []
    total = 0
    for mtime, size, path in exports:
        total += size
        if total <= max_bytes or path == used or now - mtime < keep_recent_s:
            continue
        path.unlink(missing_ok=True)
        total -= size
        removed.append(path)
    return removed
