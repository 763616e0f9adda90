"""The arbitrary engine: any painting, feed-forward speed.

Two networks can do it (`ArbitrarySetup.network`):
- **MicroAST** (default; Wang et al. 2023, the authors' published weights): a style encoder and
  a modulator turn the painting into `StyleSignals` (a few per-channel vectors); the painting's
  network is the content encoder and decoder with those signals folded into its weights.
- **MetaNet** (Shen et al. 2018; Restyle's seed design, provisional CPU-trained weights): VGG19
  statistics of the painting go through the MetaNet, which writes a `TransformNet`.

Either way the engine makes one feed-forward network per painting (the "style pass", cached by
the painting's pixels as analysed), then stylizes any number of photos or frames with it through
the fast engine's runtime (onnxruntime on the CPU, fp16 on CUDA, tiling with whole-image
statistics for print sizes, ONNX export for the browser). Several paintings blend where their
representation lives: MicroAST's signals are averaged, MetaNet's generated weights are.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from restyle import zoo
from restyle.devices import resolve_device
from restyle.engines.arbitrary_config import ArbitraryOptions, ArbitrarySetup
from restyle.engines.base import FrameRunner
from restyle.engines.fast import FastStylizer
from restyle.errors import InvalidParameterError, WeightsError
from restyle.imaging import (
    ImageInput,
    as_tensor,
    check_painting_shape,
    resize_tensor_to_long_side,
)
from restyle.models.checkpoint import file_sha256, load_meta_net, load_microast
from restyle.models.meta_net import STYLE_LAYERS, style_statistics
from restyle.models.microast import StyleSignals
from restyle.models.transform_net import TransformNet
from restyle.options import normalise_weights
from restyle.progress import ProgressCallback
from restyle.vgg import VGG19Features

CACHED_STYLES = 16  # paintings (and blends) kept per engine: a few kB to 0.3 MB each
DEFAULT_STYLE_SIZE = 256  # the MetaNet's, when its checkpoint does not say
MICROAST_STYLE_SIZE = 512  # paintings' short side for MicroAST's style encoder
# Above this result size the painting is analysed larger: a sweep over 12 painting-photo pairs
# found 512 best (or within noise of it) for 512 px results and 640 best for 1024 px ones,
# lower in style distance for 10 of 12 pairs (docs/arbitrary.md, "Painting analysis size").
MICROAST_LARGE_RESULT = 768
MICROAST_LARGE_STYLE_SIZE = 640


def resolve_model(setup: ArbitrarySetup) -> tuple[Path, str]:
    """The checkpoint of the setup's network (a given file, or the shipped one verified by the
    registry) and its sha256."""
    if setup.model:
        path = Path(setup.model)
        if not path.is_file():
            raise InvalidParameterError(f"model: {setup.model!r} is not a file")
        return path, file_sha256(path)
    if setup.network == "microast":
        shipped, record = zoo.verified_microast_model(), zoo.microast_info()
    else:
        shipped, record = zoo.verified_arbitrary_model(), zoo.arbitrary_info()
    if shipped is None or record is None:
        raise WeightsError(
            f"the arbitrary engine's {setup.network} network is not installed; "
            + (
                "train one with `restyle train arbitrary` and pass it with --model"
                if setup.network == "metanet"
                else "reinstall restyle"
            )
        )
    return shipped, str(record["sha256"])


class _MetaNetPainter:
    """MetaNet: painting → VGG19 statistics → a generated `TransformNet`."""

    def style_size_for(self, result_side: int) -> int:
        return self.style_size  # as trained, whatever the result's size

    def __init__(
        self, path: Path, device: torch.device, vgg: Callable[[], VGG19Features] | None
    ) -> None:
        self.meta, self.info = load_meta_net(path, device=device)
        self.vgg = (vgg() if vgg is not None else VGG19Features(STYLE_LAYERS)).to(device)
        self.device = device
        # Paintings are analysed at the size the MetaNet saw them in training.
        loss, run = self.info.get("loss", {}), self.info.get("training", {}).get("config", {})
        self.style_size = int(loss.get("style_size") or run.get("image_size") or DEFAULT_STYLE_SIZE)

    def analyse(self, painting: torch.Tensor) -> TransformNet:
        with torch.no_grad():
            features = self.vgg(painting.to(self.device), layers=STYLE_LAYERS)
            return self.meta.transform_net(style_statistics(features))

    def blend(self, parts: list[Any], fractions: list[float]) -> TransformNet:
        states = [net.state_dict() for net in parts]
        blended = {
            name: sum((f * state[name] for f, state in zip(fractions, states, strict=True)))
            for name in states[0]
        }
        net = TransformNet(self.meta.config.network).to(self.device)
        net.load_state_dict(blended)
        return net.eval()

    def toward(self, part: Any, photo: torch.Tensor, mix: float) -> Any:
        raise InvalidParameterError(
            f"style_mix: the metanet network has no feature-space mix (got {mix}); use "
            "strength, or the microast network"
        )

    def network(self, part: Any) -> nn.Module:
        net: nn.Module = part
        return net


class _MicroASTPainter:
    """MicroAST: painting → `StyleSignals` → the content network with the signals folded in."""

    style_size = MICROAST_STYLE_SIZE

    def style_size_for(self, result_side: int) -> int:
        """The painting's analysis size for a result of this long side."""
        if result_side > MICROAST_LARGE_RESULT:
            return MICROAST_LARGE_STYLE_SIZE
        return self.style_size

    def __init__(self, path: Path, device: torch.device) -> None:
        self.model, self.info = load_microast(path, device=device)
        self.device = device

    def analyse(self, painting: torch.Tensor) -> StyleSignals:
        with torch.no_grad():
            return self.model.signals(painting.to(self.device))

    def blend(self, parts: list[Any], fractions: list[float]) -> StyleSignals:
        return StyleSignals.blend(parts, fractions)

    def toward(self, part: StyleSignals, photo: torch.Tensor, mix: float) -> StyleSignals:
        """The painting's signals moved toward the photo's own: a feature-space strength."""
        return StyleSignals.blend([part, self.analyse(photo)], [mix, 1.0 - mix])

    def network(self, part: Any) -> nn.Module:
        return self.model.styled(part).to(self.device).eval()


class ArbitraryEngine:
    """Loads the arbitrary network once; makes a network per painting; stylizes photos with it.

    >>> engine = ArbitraryEngine()
    >>> out = engine.run(photo, [painting])           # (1, 3, H, W) in [0, 1]
    >>> frames = engine.stylizer([painting])          # the painting's network, for a video loop
    >>> out = frames.stylize(frame)

    What a painting gives (signals or a generated network) and the runners built from it are
    cached by what determines them: the network's weights, the painting's pixels as analysed
    (so the analysis size is part of the key), the blend weights and the style mix. The caches
    are bounded (`CACHED_STYLES` each).
    """

    name = "arbitrary"

    def __init__(
        self,
        setup: ArbitrarySetup | None = None,
        *,
        device: str | torch.device | None = None,
        vgg: Callable[[], VGG19Features] | None = None,
    ) -> None:
        self.setup = setup or ArbitrarySetup()
        self.device = resolve_device(device)
        path, self.model_sha256 = resolve_model(self.setup)
        self._painter: _MetaNetPainter | _MicroASTPainter
        if self.setup.network == "metanet":
            self._painter = _MetaNetPainter(path, self.device, vgg)
        else:
            self._painter = _MicroASTPainter(path, self.device)
        self.info = self._painter.info
        self.trained_style_size = self._painter.style_size
        self._styles: OrderedDict[str, Any] = OrderedDict()
        self._runners: OrderedDict[str, FastStylizer] = OrderedDict()
        self._lock = threading.Lock()

    def style_key(self, painting: torch.Tensor, *, style_size: int = 0) -> str:
        """Digest of the painting as analysed (after resizing) and of the network's weights."""
        return self._digest(self._analysed(painting, style_size))

    def _digest(self, analysed: torch.Tensor) -> str:
        pixels = (analysed.clamp(0, 1) * 255).round().to(torch.uint8)
        digest = hashlib.sha256(self.model_sha256.encode())
        digest.update(str(tuple(pixels.shape)).encode())
        digest.update(pixels.cpu().numpy().tobytes())
        return digest.hexdigest()

    def analyse(self, style: ImageInput, *, style_size: int = 0) -> tuple[str, Any]:
        """What one painting gives the network (MicroAST's signals, MetaNet's generated
        network), made once per painting, and its cache key. A painting thinner than 1:20 is an
        `InvalidImageError` (`check_painting_shape`): every painting the engine takes, for a
        photo, a clip or the live export, comes through here."""
        painting = _as_painting(style)
        check_painting_shape(painting)
        analysed = self._analysed(painting, style_size)
        key = self._digest(analysed)
        with self._lock:
            if key in self._styles:
                self._styles.move_to_end(key)
                return key, self._styles[key]
        part = self._painter.analyse(analysed)
        with self._lock:
            _remember(self._styles, key, part)
        return key, part

    def blend(
        self, styles: Sequence[ImageInput], weights: Sequence[float], *, style_size: int = 0
    ) -> tuple[str, Any]:
        """Several paintings as one: MicroAST's signals or MetaNet's weights, weighted.

        Two styles with weights (1 - t, t) interpolate between them; t = 0 and 1 give the
        endpoints exactly.
        """
        fractions = normalise_weights(weights, len(styles))
        parts = [self.analyse(s, style_size=style_size) for s in styles]
        if len(parts) == 1:
            return parts[0]
        key = hashlib.sha256(
            repr([(k, f) for (k, _), f in zip(parts, fractions, strict=True)]).encode()
        ).hexdigest()
        return key, self._painter.blend([part for _, part in parts], fractions)

    def network(self, style: ImageInput, *, style_size: int = 0) -> tuple[str, nn.Module]:
        """One painting's feed-forward network (float32, on this engine's device) and its key."""
        key, part = self.analyse(style, style_size=style_size)
        return key, self._painter.network(part)

    def stylizer(
        self,
        styles: Sequence[ImageInput],
        weights: Sequence[float] | None = None,
        *,
        style_size: int = 0,
    ) -> FastStylizer:
        """The runner of the network for `styles` (blended by `weights`), made once and kept."""
        key, part = self.blend(
            styles, normalise_weights(weights, len(styles)), style_size=style_size
        )
        with self._lock:
            runner = self._runners.get(key)
            if runner is not None:
                self._runners.move_to_end(key)
                return runner
        runner = FastStylizer.from_network(
            self._painter.network(part),
            cache_key=key,
            info=self.info,
            setup=self.setup,
            device=self.device,
        )
        with self._lock:
            _remember(self._runners, key, runner)
        return runner

    def prepare(
        self,
        styles: Sequence[ImageInput],
        weights: Sequence[float] | None,
        options: ArbitraryOptions,
    ) -> FrameRunner | None:
        """A clip's runner (`FeedForwardEngine.prepare`): the paintings' network folded once;
        None with `style_mix` under 1, whose network takes each photo's own signals."""
        if options.style_mix != 1.0:
            return None
        runner = self.stylizer(
            list(styles), normalise_weights(weights, len(styles)), style_size=options.style_size
        )
        whole = dataclasses.replace(options, size=0)  # frames arrive at their size

        def run(frames: torch.Tensor) -> torch.Tensor:
            return runner.stylize(frames, whole)

        return run

    def live_model(self, styles: Sequence[ImageInput]) -> Path:
        """The paintings' network as ONNX (`FeedForwardEngine.live_model`), blended equally."""
        return self.stylizer(list(styles)).onnx_path()

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
        style_size = options.style_size or self._painter.style_size_for(
            int(options.size or max(content.shape[-2:]))
        )
        if options.style_mix == 1.0:
            runner = self.stylizer(styles, style_blend, style_size=style_size)
            return runner.stylize(content, options, callback=callback)
        # A network for this photo alone: its own signals are part of it. PyTorch runs it (an
        # ONNX export per call would cost more than the call).
        weights = normalise_weights(style_blend, len(styles))
        _, part = self.blend(styles, weights, style_size=style_size)
        check_painting_shape(content, name="photo (analysed like a painting for style_mix)")
        photo = self._analysed(content, style_size)
        mixed = self._painter.toward(part, photo, options.style_mix)
        once = FastStylizer.from_network(
            self._painter.network(mixed),
            cache_key="",
            info=self.info,
            setup=dataclasses.replace(self.setup, runtime="torch"),
            device=self.device,
        )
        return once.stylize(content, options, callback=callback)

    def _analysed(self, painting: torch.Tensor, style_size: int) -> torch.Tensor:
        # The short side at style_size, as the training crops were. The long side's cap (4 ×
        # style_size, itself at least 64) leaves a painting of at most 1:MAX_PAINTING_ASPECT a
        # short side of 13 px or more: over MicroAST's reflect padding (4) and strides, and
        # over what MetaNet's VGG19 pools away before relu4_1 (8).
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
