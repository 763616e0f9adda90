"""Settings of a training run: the loop's (`TrainConfig`) and the fast engine's losses."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from restyle.errors import InvalidParameterError
from restyle.training.data import MAX_SCALE_JITTER
from restyle.vgg_layers import check_layers

MAX_STEPS = 10_000_000
MAX_TIME_LIMIT_S = 30 * 86400.0


@dataclass(frozen=True)
class TrainConfig:
    """The training loop's settings, shared by every engine.

    - `steps`: optimiser steps; `epochs` > 0 sets them from the data set size instead.
    - `batch_size`: images per step and per process (under DDP each process takes its own).
    - `image_size`: side of the square random crops, px.
    - `zoom`: photos are scaled so their short side is `image_size` times a random factor in
      [1, zoom] before cropping (1.25: crops of 80-100 % of the photo; 4: down to a quarter,
      the scale of a print-size output).
    - `learning_rate`: Adam's; `lr_decay_to` is the fraction of it reached at the last step
      by cosine decay (1 keeps it constant).
    - `precision`: "auto" trains in bfloat16 autocast on CUDA (with channels-last memory) and
      on CPUs that compute bf16 natively (AVX512-BF16 or AMX: `restyle.devices`), float32
      elsewhere; the Gram matrices and losses stay float32 either way.
    - `workers`: data-loader processes decoding and cropping photos (-1: up to 8 when training
      on a GPU, none on the CPU, where training needs the cores itself).
    - `log_every`, `sample_every`, `checkpoint_every`: steps between log lines, sample images
      and resumable checkpoints (0 disables samples / intermediate checkpoints).
    - `seed`: fixes initial weights, the order of photos and every crop, so a run repeats.
    - `time_limit_s`: stop after this many seconds of training (0: no limit), `steps` being
      then the most it may take. The learning rate's decay follows whichever of the two is
      further along, so a run cut by time ends decayed as one cut by steps does. (The steps
      reached depend on the machine, so such a run repeats only up to where it stopped.)
    """

    steps: int = 2000
    epochs: float = 0.0
    batch_size: int = 8
    image_size: int = 256
    zoom: float = MAX_SCALE_JITTER
    learning_rate: float = 1e-3
    lr_decay_to: float = 1.0
    precision: str = "auto"
    workers: int = -1
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 1000
    seed: int = 0
    time_limit_s: float = 0.0

    def __post_init__(self) -> None:
        _check_range("steps", self.steps, 1, MAX_STEPS)
        _check_range("time_limit_s", self.time_limit_s, 0.0, MAX_TIME_LIMIT_S)
        _check_range("epochs", self.epochs, 0, 10_000)
        _check_range("batch_size", self.batch_size, 1, 1024)
        _check_range("image_size", self.image_size, 16, 4096)
        if self.image_size % 4:
            raise InvalidParameterError(
                f"image_size: must be a multiple of 4, got {self.image_size}"
            )
        _check_range("zoom", self.zoom, 1.0, 8.0)
        _check_range("learning_rate", self.learning_rate, 1e-8, 1.0)
        _check_range("lr_decay_to", self.lr_decay_to, 0.0, 1.0)
        if self.precision not in ("auto", "float32", "bfloat16"):
            raise InvalidParameterError(
                f"precision: auto, float32 or bfloat16, got {self.precision!r}"
            )
        _check_range("workers", self.workers, -1, 64)
        for name in ("log_every", "sample_every", "checkpoint_every"):
            _check_range(name, getattr(self, name), 0, MAX_STEPS)
        _check_range("seed", self.seed, 0, 2**63 - 1)


@dataclass(frozen=True)
class FastLossConfig:
    """The perceptual loss a fast-engine network is trained with (Johnson et al. 2016).

    Content: MSE of VGG19 relu2_2 features. Style: sum over relu1_1..relu4_1 of the MSE between
    Gram matrices normalised by C·H·W, times `style_weight`. TV: mean absolute difference of
    neighbouring pixels (image in [0, 1]) times `tv_weight`. With these normalisations a style
    weight of 1-3 against content 1 is the useful range (3 is strong but keeps the photo
    readable); the default TV weight equals 0.1 on a 0-255 image.
    `style_size`: the painting is resized to this long side before its Grams are taken
    (0: the training crop size); larger gives smaller brush strokes relative to the photo.
    `style_balance` p in [0, 1]: each style layer's term is multiplied by (E_max / E_layer)^p,
    E being the mean square of the painting's Gram at that layer. The plain Gram MSE (p = 0)
    weighs relu4_1 thousands of times more than relu1_1 relative to what each layer holds, so
    colour (relu1_1) drifts while the strokes sharpen; p = 1 weighs every layer's relative
    distance alike, as `restyle.metrics` does.
    `content_target` (0: off): instead of a fixed content weight, hold the training batches'
    content distance (relu4_2, as `restyle.metrics` measures it) near this value: the content
    weight is multiplied by a factor that rises while the distance is above the target and falls
    while it is below, so each painting takes as much style as that much change of the photo
    allows (`restyle.training.content_control`).
    `content_hold` N (0: off): a content target without a number: the mean content distance of
    the first N steps (the starting network's, for a refinement: the arbitrary pass's) becomes
    the target, so the network takes what style it can without moving further from the photo.
    `grid_weight` (0: off): weight of the grid penalty (`restyle.losses.grid_phase_variance`:
    fine detail falling unevenly on the 4-px grid's phases, which the decoder's upsampling
    draws as hairlines), relative to the content and style terms: the penalty is multiplied by
    their sum (detached), so one weight means the same for every painting and loss scale.
    """

    content_weight: float = 1.0
    style_weight: float = 3.0
    tv_weight: float = 25.5
    content_layers: tuple[str, ...] = ("relu2_2",)
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    style_size: int = 0
    style_balance: float = 0.0
    content_target: float = 0.0
    content_hold: int = 0
    grid_weight: float = 0.0

    def __post_init__(self) -> None:
        for name in ("content_weight", "style_weight", "tv_weight"):
            _check_range(name, getattr(self, name), 0.0, 1e9)
        _check_range("style_balance", self.style_balance, 0.0, 1.0)
        _check_range("content_target", self.content_target, 0.0, 10.0)
        _check_range("grid_weight", self.grid_weight, 0.0, 1e6)
        _check_range("content_hold", self.content_hold, 0, 10_000)
        if self.content_target and self.content_hold:
            raise InvalidParameterError(
                "content_hold: a target is measured or given, not both (content_target "
                f"{self.content_target})"
            )
        if (self.content_target or self.content_hold) and not self.content_weight:
            raise InvalidParameterError("content_target: needs a content weight above 0 to adapt")
        object.__setattr__(
            self, "content_layers", check_layers(self.content_layers, argument="content_layers")
        )
        object.__setattr__(
            self, "style_layers", check_layers(self.style_layers, argument="style_layers")
        )
        _check_range("style_size", self.style_size, 0, 4096)


@dataclass(frozen=True)
class RefineRecipe:
    """How a painting's network is refined from the arbitrary pass on a CPU (docs/fast.md has
    how each recipe was tuned)."""

    frozen: tuple[str, ...] = ("encoder", "head")
    image_size: int = 256
    batch_size: int = 4
    style_size: int = 512
    content_weight: float = 1.5
    style_weight: float = 1.0
    learning_rate: float = 1e-4
    content_layers: tuple[str, ...] = ("relu2_2",)
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    style_balance: float = 0.0
    content_target: float = 0.0
    content_hold: int = 0
    grid_weight: float = 0.0

    def loss(self, *, style_size: int | None = None) -> FastLossConfig:
        """The recipe's loss (the painting's long side `style_size` if given)."""
        return FastLossConfig(
            content_weight=self.content_weight,
            style_weight=self.style_weight,
            style_size=self.style_size if style_size is None else style_size,
            content_layers=self.content_layers,
            style_layers=self.style_layers,
            style_balance=self.style_balance,
            content_target=self.content_target,
            content_hold=self.content_hold,
            grid_weight=self.grid_weight,
        )

    def train_arguments(self) -> list[str]:
        """The recipe as `restyle train fast --init arbitrary` options."""
        return [
            "--freeze", ",".join(self.frozen), "--image-size", str(self.image_size),
            "--batch-size", str(self.batch_size), "--style-size", str(self.style_size),
            "--content-weight", f"{self.content_weight:g}",
            "--style-weight", f"{self.style_weight:g}",
            "--learning-rate", f"{self.learning_rate:g}",
            "--content-layers", ",".join(self.content_layers),
            "--style-layers", ",".join(self.style_layers),
            "--style-balance", f"{self.style_balance:g}",
            *(["--content-target", f"{self.content_target:g}"] if self.content_target else []),
            *(["--content-hold", str(self.content_hold)] if self.content_hold else []),
            *(["--grid-weight", f"{self.grid_weight:g}"] if self.grid_weight else []),
        ]  # fmt: skip


# The zoo's `refine-cpu` profile (model-zoo/recipes.toml): how the shipped styles were made.
REFINE_CPU = RefineRecipe()
# A personal style in a few minutes (the service's refine jobs, benchmarks/refine_time.py):
# relu4_2 holds the photo's layout, which relu2_2 alone let go as the style rose; relu5_1, the
# layer the plain recipe never trains, holds most of what the arbitrary pass misses; and the
# full balance weighs each layer by what it holds relative to the painting, which keeps the
# painting's colours (relu1_1) that the plain Gram loss let drift (docs/fast.md).
# The content weight is adapted to hold the batches' relu4_2 distance near 0.96 (a content
# target): one fixed weight let the Rhône's photo dissolve and kept Gauguin's from taking
# the painting (docs/fast.md, "A content target"). Two crops a step at a higher rate make
# twice the steps in a budget, and the painting at 640 px is at about the scale a 512 px
# result is compared with (its area), where 512 taught strokes too small (docs/fast.md,
# "Screening at fixed steps"). The grid penalty keeps the decoder from drawing its hairlines
# harder than the arbitrary pass does (docs/artefacts.md: on The Scream, streaks 1.75 without
# it, 1.18 with weight 2, the arbitrary pass 1.90).
PERSONAL_CPU = RefineRecipe(
    batch_size=2,
    style_size=640,
    learning_rate=3e-4,
    content_weight=1.5,
    style_weight=1.0,
    content_layers=("relu4_2",),
    style_layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
    style_balance=1.0,
    content_target=0.96,
    grid_weight=2.0,
)


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidParameterError(f"{name}: must be in [{low}, {high}], got {value!r}")


def as_dict(config: Any) -> dict[str, Any]:
    """A config as JSON-ready values (tuples become lists)."""
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()
    }
