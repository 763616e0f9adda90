"""The arbitrary engine: any painting, feed-forward speed (a MetaNet writes the network).

`ArbitraryEngine` runs VGG19 and the MetaNet once per painting (the "style pass"), then
stylizes any number of photos or frames with the generated `TransformNet` through the fast
engine's runtime (onnxruntime on the CPU, fp16 on CUDA, exact tiling for large images).
Generated networks are cached by the painting's pixels, so a service or a webcam loop that
sees the same painting again skips the style pass.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from restyle import zoo
from restyle.devices import resolve_device
from restyle.engines.arbitrary_config import ArbitraryOptions, ArbitrarySetup
from restyle.engines.fast import FastStylizer
from restyle.errors import InvalidParameterError, WeightsError
from restyle.imaging import ImageInput, as_tensor, resize_tensor_to_long_side
from restyle.models.checkpoint import file_sha256, load_meta_net
from restyle.models.meta_net import STYLE_LAYERS, style_statistics
from restyle.models.transform_net import TransformNet
from restyle.options import normalise_weights
from restyle.progress import ProgressCallback
from restyle.vgg import VGG19Features

CACHED_STYLES = 16  # generated networks kept per stylizer (each ~0.3 MB)
DEFAULT_STYLE_SIZE = 256


def resolve_meta_model(model: str | os.PathLike[str] = "") -> tuple[Path, str]:
    """The given MetaNet checkpoint, or the shipped one (verified by the registry), and its
    sha256."""
    if model:
        path = Path(model)
        if not path.is_file():
            raise InvalidParameterError(f"model: {str(model)!r} is not a file")
        return path, file_sha256(path)
    shipped, record = zoo.verified_arbitrary_model(), zoo.arbitrary_info()
    if shipped is None or record is None:
        raise WeightsError(
            "the arbitrary engine's model is not installed; train one with "
            "`restyle train arbitrary` and pass it with --model"
        )
    return shipped, str(record["sha256"])


class ArbitraryEngine:
    """Loads the MetaNet once; writes a network per painting; stylizes photos with it.

    >>> engine = ArbitraryEngine()
    >>> out = engine.run(photo, [painting])           # (1, 3, H, W) in [0, 1]
    >>> frames = engine.stylizer([painting])          # the painting's network, for a video loop
    >>> out = frames.stylize(frame)

    Generated networks, and their runners, are cached by what determines them: the MetaNet, the
    painting's pixels as analysed (so the analysis size is part of the key) and the blend
    weights. The caches are bounded (`CACHED_STYLES` each).
    """

    name = "arbitrary"

    def __init__(
        self,
        setup: ArbitrarySetup | None = None,
        *,
        device: str | torch.device | None = None,
        vgg: VGG19Features | None = None,
    ) -> None:
        self.setup = setup or ArbitrarySetup()
        self.device = resolve_device(device)
        path, self.model_sha256 = resolve_meta_model(self.setup.model)
        self.meta, self.info = load_meta_net(path, device=self.device)
        self.vgg = (vgg or VGG19Features(STYLE_LAYERS)).to(self.device)
        # Paintings are analysed at the size the MetaNet saw them in training.
        loss, run = self.info.get("loss", {}), self.info.get("training", {}).get("config", {})
        self.trained_style_size = int(
            loss.get("style_size") or run.get("image_size") or DEFAULT_STYLE_SIZE
        )
        self._networks: OrderedDict[str, TransformNet] = OrderedDict()
        self._runners: OrderedDict[str, FastStylizer] = OrderedDict()
        self._lock = threading.Lock()

    def style_key(self, painting: torch.Tensor, *, style_size: int = 0) -> str:
        """Digest of the painting as analysed (after resizing) and of the MetaNet."""
        return self._digest(self._analysed(painting, style_size))

    def _digest(self, analysed: torch.Tensor) -> str:
        pixels = (analysed.clamp(0, 1) * 255).round().to(torch.uint8)
        digest = hashlib.sha256(self.model_sha256.encode())
        digest.update(str(tuple(pixels.shape)).encode())
        digest.update(pixels.cpu().numpy().tobytes())
        return digest.hexdigest()

    def network(self, style: ImageInput, *, style_size: int = 0) -> tuple[str, TransformNet]:
        """The generated network for a painting (any image input) and its cache key."""
        analysed = self._analysed(_as_painting(style), style_size)
        key = self._digest(analysed)
        with self._lock:
            if key in self._networks:
                self._networks.move_to_end(key)
                return key, self._networks[key]
        with torch.no_grad():
            features = self.vgg(analysed.to(self.device), layers=STYLE_LAYERS)
            net = self.meta.transform_net(style_statistics(features))
        with self._lock:
            _remember(self._networks, key, net)
        return key, net

    def blend(
        self, styles: Sequence[ImageInput], weights: Sequence[float], *, style_size: int = 0
    ) -> tuple[str, TransformNet]:
        """A network whose weights are the weighted mean of the paintings' networks.

        Two styles with weights (1 - t, t) interpolate between them; t = 0 and 1 give the
        endpoints exactly.
        """
        fractions = normalise_weights(weights, len(styles))
        parts = [self.network(s, style_size=style_size) for s in styles]
        if len(parts) == 1:
            return parts[0]
        key = hashlib.sha256(
            repr([(k, f) for (k, _), f in zip(parts, fractions, strict=True)]).encode()
        ).hexdigest()
        states = [net.state_dict() for _, net in parts]
        blended = {
            name: sum((f * state[name] for f, state in zip(fractions, states, strict=True)))
            for name in states[0]
        }
        net = TransformNet(self.meta.config.network).to(self.device)
        net.load_state_dict(blended)
        return key, net.eval()

    def stylizer(
        self,
        styles: Sequence[ImageInput],
        weights: Sequence[float] | None = None,
        *,
        style_size: int = 0,
    ) -> FastStylizer:
        """The runner of the network for `styles` (blended by `weights`), made once and kept."""
        key, net = self.blend(
            styles, normalise_weights(weights, len(styles)), style_size=style_size
        )
        with self._lock:
            runner = self._runners.get(key)
            if runner is not None:
                self._runners.move_to_end(key)
                return runner
        runner = FastStylizer.from_network(
            net, cache_key=key, info=self.info, setup=self.setup, device=self.device
        )
        with self._lock:
            _remember(self._runners, key, runner)
        return runner

    def run(
        self,
        content: torch.Tensor,
        styles: Sequence[ImageInput],
        options: ArbitraryOptions | None = None,
        *,
        style_blend: Sequence[float] | None = None,
        callback: ProgressCallback | None = None,
    ) -> torch.Tensor:
        """(1, 3, H, W) in [0, 1] → stylized in the style of `styles`, on the CPU."""
        options = options or ArbitraryOptions()
        runner = self.stylizer(styles, style_blend, style_size=options.style_size)
        return runner.stylize(content, options, callback=callback)

    def _analysed(self, painting: torch.Tensor, style_size: int) -> torch.Tensor:
        # The short side at style_size, as the training crops were.
        size = style_size or self.trained_style_size
        height, width = painting.shape[-2:]
        long_side = round(size * max(height, width) / min(height, width))
        return resize_tensor_to_long_side(painting.float(), min(long_side, 4 * size))


def _remember(cache: OrderedDict[str, Any], key: str, value: Any) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > CACHED_STYLES:
        cache.popitem(last=False)


def _as_painting(style: ImageInput) -> torch.Tensor:
    if isinstance(style, torch.Tensor):
        if style.ndim != 4 or style.shape[:2] != (1, 3):
            raise InvalidParameterError(
                f"style: expected a (1, 3, H, W) tensor, got {tuple(style.shape)}"
            )
        return style
    return as_tensor(style)
