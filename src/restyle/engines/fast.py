"""The fast engine: a trained feed-forward transform network per style (Johnson et al. 2016)."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import torch

from restyle import zoo
from restyle.devices import resolve_device
from restyle.engines.fast_config import FastConfig
from restyle.engines.tiling import run_tiled
from restyle.errors import InvalidParameterError, RestyleError, WeightsError
from restyle.imaging import resize_tensor_to_long_side
from restyle.models.checkpoint import file_sha256, load_transform_net
from restyle.models.transform_net import TransformNet
from restyle.onnx_export import OnnxTransformNet, cached_onnx_path, export_onnx
from restyle.progress import Progress, ProgressCallback


def resolve_model(style: str | os.PathLike[str]) -> Path:
    """A checkpoint path as given, or the network of the zoo style with that id.

    A zoo id may name a size: 'starry-night:lite'; without one the best shipped network is
    used. Shipped files are checked against the registry's sha256 before use.
    """
    path = Path(style)
    if path.is_file():
        return path
    variant = zoo.find_variant(str(style))
    if variant is None:
        known = ", ".join(e.id for e in zoo.entries()) or "none installed"
        raise InvalidParameterError(
            f"style: {str(style)!r} is neither a checkpoint file nor a trained style "
            f"(known: {known}; `restyle styles` lists them)"
        )
    if not variant.path.is_file() or file_sha256(variant.path) != variant.sha256:
        raise WeightsError(
            f"style {str(style)!r}: {variant.path} is missing or damaged (sha256 differs from "
            "the registry); reinstall restyle"
        )
    return variant.path


class FastStylizer:
    """Loads one trained style once, then stylizes any number of images with it.

    >>> stylizer = FastStylizer("my-style.safetensors")
    >>> stylized = stylizer.stylize(photo)  # (1, 3, H, W) in [0, 1] → same shape, on the CPU
    """

    def __init__(
        self,
        style: str | os.PathLike[str],
        *,
        config: FastConfig | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        path = resolve_model(style)
        net, info = load_transform_net(path)
        self._setup(net, info, cache_key=file_sha256(path), config=config, device=device)

    @classmethod
    def from_network(
        cls,
        net: TransformNet,
        *,
        cache_key: str,
        info: dict[str, Any] | None = None,
        config: FastConfig | None = None,
        device: str | torch.device | None = None,
    ) -> FastStylizer:
        """A stylizer for a network built in memory (the arbitrary engine's generated ones).

        `cache_key` names the network's weights (a hex digest) for the ONNX export cache.
        """
        stylizer = cls.__new__(cls)
        stylizer._setup(net, info or {}, cache_key=cache_key, config=config, device=device)
        return stylizer

    def _setup(
        self,
        net: TransformNet,
        info: dict[str, Any],
        *,
        cache_key: str,
        config: FastConfig | None,
        device: str | torch.device | None,
    ) -> None:
        self.config = config or FastConfig()
        self.device = resolve_device(device)
        self.info, self.cache_key = info, cache_key
        # Half-precision weights rather than autocast: no per-layer casts, half the traffic.
        self.dtype = self._compute_dtype()
        self.net = net.eval().requires_grad_(False).to(self.device, self.dtype)
        if self.device.type == "cuda":
            self.net = self.net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self._onnx: OnnxTransformNet | None = None

    @property
    def tile_size(self) -> int:
        """Side of the largest image run whole; above it, tiles of this side."""
        if self.config.tile_size:
            return self.config.tile_size
        if self.device.type == "cuda":
            return 2048
        # Memory follows the full-resolution width: a 2048² run of a 16-channel network peaks
        # near 2.5 GB on the CPU (measured: 2.1 GB at 2400×1600). Tiling is exact but costs
        # several passes, so tiles are as large as that budget allows.
        side = int((2048**2 * 16 / self.net.config.channels[0]) ** 0.5)
        return max(256, side - side % 4)

    def stylize(
        self, content: torch.Tensor, *, callback: ProgressCallback | None = None
    ) -> torch.Tensor:
        """(1, 3, H, W) in [0, 1] → stylized (1, 3, H', W') in [0, 1] on the CPU.

        H' × W' is the content's size, or its resize to `config.size` on the long side.
        `callback` receives a `Progress` per tile pass when the image is tiled (steps are tile
        passes; `loss` is NaN, there is none).
        """
        if content.ndim != 4 or content.shape[1] != 3:
            raise InvalidParameterError(
                f"content: expected a (B, 3, H, W) tensor, got {tuple(content.shape)}"
            )
        if self.config.size:
            content = resize_tensor_to_long_side(content.float(), self.config.size)
        height, width = content.shape[-2:]
        tiled = content.shape[0] == 1 and height * width > self.tile_size**2
        began = time.perf_counter()

        def on_tile(done: int, total: int) -> None:
            if callback is not None:
                elapsed = time.perf_counter() - began
                callback(
                    Progress(
                        step=done, total=total, loss=math.nan, elapsed=elapsed, size=(height, width)
                    )
                )

        with torch.inference_mode():
            if tiled:
                out = run_tiled(
                    self.net,
                    content.cpu(),
                    tile=self.tile_size,
                    overlap=self.config.tile_overlap,
                    device=self.device,
                    forward=self._forward,
                    on_tile=on_tile,
                )
            elif min(height, width) >= 8 and self._use_onnx():
                out = self._onnx_net()(content)
            else:
                out = self._forward(content.to(self.device)).cpu()
        return out.clamp(0.0, 1.0)

    def _forward(self, image: torch.Tensor) -> torch.Tensor:
        image = image.to(self.dtype)
        if self.device.type == "cuda":
            image = image.contiguous(memory_format=torch.channels_last)
        out: torch.Tensor = self.net(image)
        return out.float()

    def _compute_dtype(self) -> torch.dtype:
        precision = self.config.precision
        if precision == "auto":
            return torch.float16 if self.device.type == "cuda" else torch.float32
        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[
            precision
        ]

    def _use_onnx(self) -> bool:
        runtime = self.config.runtime
        if runtime == "onnx":
            if self.device.type != "cpu" or self.dtype != torch.float32:
                raise InvalidParameterError(
                    "runtime onnx: runs on the CPU in float32 only; use device cpu"
                )
            return True
        if runtime == "auto" and self.device.type == "cpu" and self.dtype == torch.float32:
            try:
                import onnxruntime  # type: ignore[import-untyped]  # noqa: F401
            except ImportError:
                return False
            return True
        return False

    def _onnx_net(self) -> OnnxTransformNet:
        if self._onnx is None:
            path = cached_onnx_path(self.cache_key)
            if not path.is_file():
                try:
                    export_onnx(self.net, path)  # the ONNX runtime is CPU-only: so is the net
                except OSError as exc:
                    raise RestyleError(f"cannot write the ONNX cache {str(path)!r}: {exc}") from exc
            self._onnx = OnnxTransformNet(path)
        return self._onnx
