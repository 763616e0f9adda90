"""The arbitrary engine: any painting, feed-forward speed (a MetaNet writes the network).

`ArbitraryStylizer(painting)` runs VGG19 and the MetaNet once for the painting (the "style
pass"), then stylizes any number of frames with the generated `TransformNet` through the fast
engine's runtime (onnxruntime on the CPU, fp16 on CUDA, exact tiling for large images).
Generated networks are cached by the painting's pixels, so a service or a webcam loop that
sees the same painting again skips the style pass.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from restyle import zoo
from restyle.devices import resolve_device
from restyle.engines.arbitrary_config import ArbitraryConfig
from restyle.engines.fast import FastStylizer
from restyle.errors import InvalidParameterError, WeightsError
from restyle.imaging import resize_tensor_to_long_side
from restyle.models.checkpoint import file_sha256, load_meta_net
from restyle.models.meta_net import STYLE_LAYERS, style_statistics
from restyle.models.transform_net import TransformNet
from restyle.progress import ProgressCallback
from restyle.vgg import VGG19Features

CACHED_STYLES = 16  # generated networks kept per stylizer (each ~0.3 MB)
DEFAULT_STYLE_SIZE = 256


def resolve_meta_model(model: str | os.PathLike[str] = "") -> Path:
    """The given MetaNet checkpoint, or the shipped one."""
    if model:
        path = Path(model)
        if not path.is_file():
            raise InvalidParameterError(f"model: {str(model)!r} is not a file")
        return path
    shipped, record = zoo.arbitrary_model(), zoo.arbitrary_info()
    if shipped is None or record is None:
        raise WeightsError(
            "the arbitrary engine's model is not installed; train one with "
            "`restyle train arbitrary` and pass it with --model"
        )
    if not shipped.is_file() or file_sha256(shipped) != record["sha256"]:
        raise WeightsError(
            f"the arbitrary engine's model {shipped} is missing or damaged (sha256 differs from "
            "the registry); reinstall restyle"
        )
    return shipped


class ArbitraryStylizer:
    """Loads the MetaNet once; writes a network per painting; stylizes frames with it.

    >>> stylizer = ArbitraryStylizer("my_painting.jpg")
    >>> frame_out = stylizer.stylize(frame)          # (1, 3, H, W) in [0, 1]
    >>> stylizer.set_style("other.jpg")              # a style pass, unless seen before
    """

    def __init__(
        self,
        style: Any = None,
        *,
        config: ArbitraryConfig | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        self.config = config or ArbitraryConfig()
        self.device = resolve_device(device)
        path = resolve_meta_model(self.config.model)
        self.model_sha256 = file_sha256(path)
        self.meta, self.info = load_meta_net(path, device=self.device)
        self.vgg = VGG19Features(STYLE_LAYERS).to(self.device)
        # Paintings are analysed at the size the MetaNet saw them in training.
        loss, run = self.info.get("loss", {}), self.info.get("training", {}).get("config", {})
        trained = loss.get("style_size") or run.get("image_size") or DEFAULT_STYLE_SIZE
        self.style_size = self.config.style_size or int(trained)
        self._networks: OrderedDict[str, TransformNet] = OrderedDict()
        self._runners: OrderedDict[str, FastStylizer] = OrderedDict()
        self._current: str | None = None
        if style is not None:
            self.set_style(style)

    def style_key(self, painting: torch.Tensor) -> str:
        """Digest of the painting as analysed (after resizing) and of the MetaNet."""
        return self._digest(self._analysed(painting))

    def _digest(self, analysed: torch.Tensor) -> str:
        pixels = (analysed.clamp(0, 1) * 255).round().to(torch.uint8)
        digest = hashlib.sha256(self.model_sha256.encode())
        digest.update(str(tuple(pixels.shape)).encode())
        digest.update(pixels.cpu().numpy().tobytes())
        return digest.hexdigest()

    def network(self, style: Any) -> tuple[str, TransformNet]:
        """The generated network for a painting (any image input) and its cache key."""
        analysed = self._analysed(_as_painting(style))
        key = self._digest(analysed)
        if key in self._networks:
            self._networks.move_to_end(key)
            return key, self._networks[key]
        with torch.no_grad():
            features = self.vgg(analysed.to(self.device))
            net = self.meta.transform_net(style_statistics(features))
        self._remember(self._networks, key, net)
        return key, net

    def blend(self, styles: Sequence[Any], weights: Sequence[float]) -> tuple[str, TransformNet]:
        """A network whose weights are the weighted mean of the paintings' networks.

        Two styles with weights (1 - t, t) interpolate between them; t = 0 and 1 give the
        endpoints exactly.
        """
        if len(styles) != len(weights) or not styles:
            raise InvalidParameterError("style: one weight per style is needed")
        total = float(sum(weights))
        if total <= 0:
            raise InvalidParameterError(f"style weights: must sum to > 0, got {list(weights)}")
        parts = [self.network(s) for s in styles]
        if len(parts) == 1:
            return parts[0]
        fractions = [w / total for w in weights]
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

    def set_style(self, style: Any, *, weights: Sequence[float] | None = None) -> str:
        """Make `style` (one image, or several with `weights`) the current style; its key."""
        styles = list(style) if isinstance(style, list | tuple) else [style]
        key, net = self.blend(styles, weights or [1.0] * len(styles))
        if key not in self._runners:
            runner = FastStylizer.from_network(
                net, cache_key=key, info=self.info, config=self.config, device=self.device
            )
            self._remember(self._runners, key, runner)
        self._current = key
        return key

    @property
    def runner(self) -> FastStylizer:
        if self._current is None:
            raise InvalidParameterError("style: call set_style(painting) first")
        return self._runners[self._current]

    def stylize(
        self, content: torch.Tensor, *, callback: ProgressCallback | None = None
    ) -> torch.Tensor:
        """(1, 3, H, W) in [0, 1] → stylized in the current style, on the CPU."""
        return self.runner.stylize(content, callback=callback)

    def _analysed(self, painting: torch.Tensor) -> torch.Tensor:
        # The short side at style_size, as the training crops were.
        height, width = painting.shape[-2:]
        long_side = round(self.style_size * max(height, width) / min(height, width))
        return resize_tensor_to_long_side(painting.float(), min(long_side, 4 * self.style_size))

    @staticmethod
    def _remember(cache: OrderedDict[str, Any], key: str, value: Any) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > CACHED_STYLES:
            cache.popitem(last=False)


def _as_painting(style: Any) -> torch.Tensor:
    from restyle.api import as_tensor

    if isinstance(style, torch.Tensor):
        if style.ndim != 4 or style.shape[:2] != (1, 3):
            raise InvalidParameterError(
                f"style: expected a (1, 3, H, W) tensor, got {tuple(style.shape)}"
            )
        return style
    return as_tensor(style)
