"""The fast engine: a trained feed-forward transform network per style (Johnson et al. 2016)."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from restyle import zoo
from restyle.cpu_runtimes import (
    CpuRuntime,
    OpenVinoTransformNet,
    auto_cpu_runtime,
    exported_network,
)
from restyle.devices import resolve_device
from restyle.engines.base import FrameRunner
from restyle.engines.fast_config import FastOptions, FastSetup
from restyle.engines.tiling import run_tiled
from restyle.errors import InvalidParameterError, RestyleError, WeightsError
from restyle.imaging import resize_tensor_to_long_side
from restyle.models.checkpoint import file_sha256, load_fast_network, load_microast
from restyle.models.microast import StyleSignals
from restyle.onnx_export import OnnxTransformNet, cached_onnx_path, export_onnx
from restyle.options import normalise_weights
from restyle.progress import Progress, ProgressCallback


def signals_variant(style: str | os.PathLike[str]) -> zoo.Variant | None:
    """The zoo variant `style` names if it is the arbitrary network's signals (no file)."""
    if Path(style).is_file():
        return None
    variant = zoo.find_variant(str(style))
    return variant if variant is not None and variant.signals is not None else None


def signals_network(variant: zoo.Variant) -> tuple[nn.Module, str]:
    """The shipped MicroAST with a zoo painting's recorded signals folded in, and a digest of
    what made it (the weights and the signals) for the ONNX export cache."""
    assert variant.signals is not None
    path, record = zoo.verified_microast_model(), zoo.microast_info()
    if path is None or record is None:
        raise WeightsError("the arbitrary engine's MicroAST network is not installed; reinstall")
    model, _ = load_microast(path)
    names = [field.name for field in dataclasses.fields(StyleSignals)]
    signals = StyleSignals(
        *(torch.tensor(variant.signals[n], dtype=torch.float32).view(1, -1, 1, 1) for n in names)
    )
    digest = hashlib.sha256(str(record["sha256"]).encode())  # verified against the file above
    digest.update(repr([variant.signals[n] for n in names]).encode())
    return model.styled(signals), digest.hexdigest()


def resolve_model(style: str | os.PathLike[str]) -> Path:
    """A checkpoint path as given, or the network of the zoo style with that id.

    A zoo id may name a size: 'starry-night:lite'; without one the best shipped network is
    used. Shipped files are checked against the registry's sha256 (by the registry, once per
    process).
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
    return variant.verified_path()


class FastStylizer:
    """One trained network, loaded once, that stylizes any number of images.

    >>> stylizer = FastStylizer("my-style.safetensors")
    >>> stylized = stylizer.stylize(photo)  # (1, 3, H, W) in [0, 1] → same shape, on the CPU
    """

    def __init__(
        self,
        style: str | os.PathLike[str],
        *,
        setup: FastSetup | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        variant = signals_variant(style)
        if variant is not None:
            net, key = signals_network(variant)
            info: dict[str, Any] = {"network": variant.network, "signals": variant.training}
            self._setup(net, info, cache_key=key, setup=setup, device=device)
            return
        path = resolve_model(style)
        net, info = load_fast_network(path)
        self._setup(net, info, cache_key=file_sha256(path), setup=setup, device=device)

    @classmethod
    def from_network(
        cls,
        net: nn.Module,
        *,
        cache_key: str,
        info: dict[str, Any] | None = None,
        setup: FastSetup | None = None,
        device: str | torch.device | None = None,
    ) -> FastStylizer:
        """A stylizer for a network built in memory (the arbitrary engine's per-painting ones:
        a `TransformNet` or a `StyledMicroAST`).

        `cache_key` names the network's weights (a hex digest) for the ONNX export cache. The
        stylizer runs its own copy: converting to its device, dtype and layout leaves the
        caller's network (the arbitrary engine's cached float32 one) as it was.
        """
        stylizer = cls.__new__(cls)
        own = copy.deepcopy(net)
        stylizer._setup(own, info or {}, cache_key=cache_key, setup=setup, device=device)
        return stylizer

    def _setup(
        self,
        net: nn.Module,
        info: dict[str, Any],
        *,
        cache_key: str,
        setup: FastSetup | None,
        device: str | torch.device | None,
    ) -> None:
        self.setup = setup or FastSetup()
        self.device = resolve_device(device)
        self.info, self.cache_key = info, cache_key
        # Half-precision weights rather than autocast: no per-layer casts, half the traffic.
        self.dtype = self._compute_dtype()
        self.net = net.eval().requires_grad_(False).to(self.device, self.dtype)
        if self.device.type == "cuda":
            self.net = self.net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self._exported: OnnxTransformNet | OpenVinoTransformNet | None = None
        self._export_lock = threading.Lock()

    def tile_size(self, options: FastOptions | None = None) -> int:
        """Side of the largest image run whole; above it, tiles of this side."""
        if options is not None and options.tile_size:
            return options.tile_size
        if self.device.type == "cuda":
            return 2048
        # Memory follows the full-resolution width: a 2048² run of a 16-channel network peaks
        # near 2.5 GB on the CPU (measured: 2.1 GB at 2400×1600). Tiling is exact but costs
        # several passes, so tiles are as large as that budget allows.
        channels = getattr(self.net, "full_resolution_channels", 16)
        side = int((2048**2 * 16 / channels) ** 0.5)
        return max(256, side - side % 4)

    def stylize(
        self,
        content: torch.Tensor,
        options: FastOptions | None = None,
        *,
        callback: ProgressCallback | None = None,
    ) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] → stylized (B, 3, H', W') in [0, 1] on the CPU.

        H' × W' is the content's size, or its resize to `options.size` on the long side.
        `callback` receives a `Progress` per tile pass when the image is tiled (steps are tile
        passes; `loss` is NaN, there is none).
        """
        if content.ndim != 4 or content.shape[1] != 3:
            raise InvalidParameterError(
                f"content: expected a (B, 3, H, W) tensor, got {tuple(content.shape)}"
            )
        options = options or FastOptions()
        if options.size:
            content = resize_tensor_to_long_side(content.float(), options.size)
        height, width = content.shape[-2:]
        tile = self.tile_size(options)
        tiled = content.shape[0] == 1 and height * width > tile**2
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
                    tile=tile,
                    overlap=options.tile_overlap,
                    device=self.device,
                    forward=self._forward,
                    on_tile=on_tile,
                )
            elif min(height, width) >= 8 and self.exported_runtime() is not None:
                out = self._exported_net()(content)
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
        precision = self.setup.precision
        if precision == "auto":
            return torch.float16 if self.device.type == "cuda" else torch.float32
        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[
            precision
        ]

    def exported_runtime(self) -> CpuRuntime | None:
        """The runtime of the exported network that runs whole images here (None: PyTorch)."""
        runtime = self.setup.runtime
        if runtime in ("onnx", "openvino"):
            if self.device.type != "cpu":
                raise InvalidParameterError(f"runtime {runtime}: runs on the CPU; use device cpu")
            if runtime == "onnx" and self.dtype != torch.float32:
                raise InvalidParameterError("runtime onnx: runs in float32 only")
            return runtime
        if runtime == "auto" and self.device.type == "cpu" and self.dtype == torch.float32:
            return auto_cpu_runtime()
        return None

    def onnx_path(self) -> Path:
        """The network exported to ONNX (float32, CPU), made once and cached on disk.

        The file is keyed by the weights' digest (`cached_onnx_path`); onnxruntime runs it here,
        and the web app's live mode sends it to the browser.
        """
        path = cached_onnx_path(self.cache_key)
        with self._export_lock:
            if not path.is_file():
                net = self.net
                if self.device.type != "cpu" or self.dtype != torch.float32:
                    net = copy.deepcopy(net).float().cpu()
                try:
                    export_onnx(net, path)
                except OSError as exc:
                    raise RestyleError(f"cannot write the ONNX cache {str(path)!r}: {exc}") from exc
        return path

    def _exported_net(self) -> OnnxTransformNet | OpenVinoTransformNet:
        if self._exported is None:
            runtime = self.exported_runtime()
            assert runtime is not None
            self._exported = exported_network(self.onnx_path(), runtime, self.setup.precision)
        return self._exported


class FastEngine:
    """The fast engine: trained networks run with one setup on one device.

    Built once (a service worker builds it at start); each style's network is loaded the first
    time it is asked for and kept (the `max_styles` most recently used), keyed by the weights
    file's identity, so no call loads a network twice.
    """

    name = "fast"

    def __init__(
        self,
        setup: FastSetup | None = None,
        *,
        device: str | torch.device | None = None,
        max_styles: int = 16,
    ) -> None:
        self.setup = setup or FastSetup()
        self.device = resolve_device(device)
        self.max_styles = max_styles
        self.loads = 0  # networks read from disk (tests count them)
        self._stylizers: OrderedDict[tuple[str, int, int], FastStylizer] = OrderedDict()
        self._lock = threading.Lock()

    def stylizer(self, style: str | os.PathLike[str]) -> FastStylizer:
        """The loaded network of a trained style (a zoo id or a checkpoint file)."""
        variant = signals_variant(style)
        if variant is not None:
            # In the package, fixed while the process runs; "ID" and "ID:arbitrary" are one.
            key = (f"signals:{zoo.split_spec(str(style))[0]}:{variant.name}", 0, 0)
        else:
            path = resolve_model(style).resolve()
            stat = path.stat()
            # Keyed on the file's identity: a retrained file at the same path is loaded again.
            key = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            found = self._stylizers.get(key)
            if found is not None:
                self._stylizers.move_to_end(key)
                return found
            stylizer = FastStylizer(style, setup=self.setup, device=self.device)
            self.loads += 1
            self._stylizers[key] = stylizer
            while len(self._stylizers) > self.max_styles:
                self._stylizers.popitem(last=False)
            return stylizer

    def run(
        self,
        content: torch.Tensor,
        styles: Sequence[str | os.PathLike[str]],
        options: FastOptions | None = None,
        *,
        style_blend: Sequence[float] | None = None,
        callback: ProgressCallback | None = None,
    ) -> torch.Tensor:
        """(1, 3, H, W) in [0, 1] → stylized, several styles blended by averaging outputs."""
        for style in styles:
            if not isinstance(style, str | os.PathLike):
                raise InvalidParameterError(
                    "style: the fast engine takes a trained style's id or a checkpoint path, "
                    f"not {type(style).__name__}"
                )
        weights = normalise_weights(style_blend, len(styles))
        stylized: torch.Tensor | None = None
        for style, weight in zip(styles, weights, strict=True):
            if weight == 0:
                continue
            part = self.stylizer(style).stylize(content, options, callback=callback) * weight
            stylized = part if stylized is None else stylized + part
        assert stylized is not None
        return stylized

    def prepare(
        self,
        styles: Sequence[str | os.PathLike[str]],
        weights: Sequence[float] | None,
        options: FastOptions,
    ) -> FrameRunner:
        """A clip's runner (`FeedForwardEngine.prepare`): every network loaded once, and its
        errors raised, before the first frame; several styles blended by averaging outputs."""
        names = [os.fspath(s) if isinstance(s, os.PathLike) else s for s in styles]
        fractions = normalise_weights(weights, len(names))
        for name, fraction in zip(names, fractions, strict=True):
            if fraction > 0:
                self.stylizer(name)
        whole = dataclasses.replace(options, size=0)  # frames arrive at their size

        def run(frames: torch.Tensor) -> torch.Tensor:
            return self.run(frames, names, whole, style_blend=fractions)

        return run

    def live_model(self, styles: Sequence[str | os.PathLike[str]]) -> Path:
        """A trained style's network as ONNX (`FeedForwardEngine.live_model`); one style."""
        if len(styles) != 1:
            raise InvalidParameterError("style: the live mode runs one trained style at a time")
        return self.stylizer(styles[0]).onnx_path()

    def run_batch(
        self,
        contents: Sequence[torch.Tensor],
        style: str | os.PathLike[str],
        options: FastOptions | None = None,
    ) -> list[torch.Tensor]:
        """Several photos in one style, with as few forward passes as possible.

        Photos whose resized shapes are equal run as one batch (what a GPU worker does with
        concurrent requests); each result equals `run(photo, [style], options)`. Images too
        large to run whole are tiled one by one.
        """
        options = options or FastOptions()
        stylizer = self.stylizer(style)
        inputs = [
            resize_tensor_to_long_side(t.float(), options.size) if options.size else t
            for t in contents
        ]
        whole_options = dataclasses.replace(options, size=0)  # resized once, above
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, tensor in enumerate(inputs):
            whole = tensor.shape[-2] * tensor.shape[-1] <= stylizer.tile_size(options) ** 2
            groups.setdefault(tuple(tensor.shape) if whole else (i,), []).append(i)
        results: list[torch.Tensor] = [torch.empty(0)] * len(inputs)
        for members in groups.values():
            stylized = stylizer.stylize(torch.cat([inputs[i] for i in members]), whole_options)
            for row, i in enumerate(members):
                results[i] = stylized[row : row + 1]
        return results
