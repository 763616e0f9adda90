"""Settings of a training run: the loop's (`TrainConfig`), the fast engine's losses
(`FastLossConfig`) and the recipes that refine a painting's network (`RefineRecipe`).

Every setting is declared with `restyle.options.option` (label, help, range): `restyle train`'s
flags are built from these declarations (`restyle.cli.flags`) and `check_options` validates
them. This module imports no PyTorch, so the service's settings read the personal-style recipe
from here without loading training code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from restyle.errors import InvalidParameterError
from restyle.options import check_options, option, option_specs
from restyle.vgg_layers import check_layers

MAX_STEPS = 10_000_000
MAX_TIME_LIMIT_S = 30 * 86400.0
MAX_SCALE_JITTER = 1.25  # crops cover 80-100 % of the short side: some zoom, no tiny details

TrainPrecision = Literal["auto", "float32", "bfloat16"]


@dataclass(frozen=True)
class TrainConfig:
    """The training loop's settings, shared by every engine (each field's help says what it
    does).

    - `zoom`: photos are scaled so their short side is `image_size` times a random factor in
      [1, zoom] before cropping (1.25: crops of 80-100 % of the photo; 4: down to a quarter,
      the scale of a print-size output).
    - `precision`: "auto" trains in bfloat16 autocast on CUDA (with channels-last memory) and
      on CPUs that compute bf16 natively (AVX512-BF16 or AMX: `restyle.devices`), float32
      elsewhere; the Gram matrices and losses stay float32 either way.
    - `workers` -1: no data-loader processes on a CPU, where training needs the cores itself.
    - `time_limit_s`: the learning rate's decay follows whichever of the time and `steps` is
      further along, so a run cut by time ends decayed as one cut by steps does. (The steps
      reached depend on the machine, so such a run repeats only up to where it stopped.)
    """

    steps: int = option(2000, label="Steps", help="optimiser steps", minimum=1, maximum=MAX_STEPS)
    epochs: float = option(
        0.0,
        label="Epochs",
        help="passes over the training photos (overrides steps; 0: off)",
        minimum=0,
        maximum=10_000,
    )
    time_limit_s: float = option(
        0.0,
        label="Time limit (s)",
        help="train this long (90s, 5m, 1.5h); with steps, whichever ends first (0: no limit)",
        minimum=0.0,
        maximum=MAX_TIME_LIMIT_S,
        flag="--time",
        duration=True,
    )
    batch_size: int = option(
        8,
        label="Batch size",
        help="photos per step and per process (under DDP each process takes its own)",
        minimum=1,
        maximum=1024,
    )
    image_size: int = option(
        256,
        label="Crop size (px)",
        help="side of the square random crops, px (a multiple of 4)",
        minimum=16,
        maximum=4096,
    )
    zoom: float = option(
        MAX_SCALE_JITTER,
        label="Largest zoom into a photo",
        help="crops' largest zoom into a photo (1.25: crops of 80-100 % of it)",
        minimum=1.0,
        maximum=8.0,
    )
    learning_rate: float = option(
        1e-3, label="Learning rate", help="Adam's learning rate", minimum=1e-8, maximum=1.0
    )
    lr_decay_to: float = option(
        1.0,
        label="Final learning rate fraction",
        help="final fraction of the learning rate, reached by cosine decay (1: constant)",
        minimum=0.0,
        maximum=1.0,
    )
    precision: TrainPrecision = option(
        "auto",
        label="Precision",
        help="auto: bfloat16 autocast where the device computes it natively, else float32",
    )
    workers: int = option(
        -1,
        label="Data-loader processes",
        help="processes decoding and cropping photos (-1: up to 8 on a GPU, none on a CPU)",
        minimum=-1,
        maximum=64,
    )
    log_every: int = option(
        10,
        label="Log every (steps)",
        help="steps between log lines",
        minimum=0,
        maximum=MAX_STEPS,
    )
    sample_every: int = option(
        500,
        label="Samples every (steps)",
        help="steps between sample images (0: none)",
        minimum=0,
        maximum=MAX_STEPS,
    )
    checkpoint_every: int = option(
        1000,
        label="Checkpoint every (steps)",
        help="steps between resumable checkpoints (0: only the last)",
        minimum=0,
        maximum=MAX_STEPS,
    )
    seed: int = option(
        0,
        label="Seed",
        help="fixes the initial weights, the order of photos and every crop, so a run repeats",
        minimum=0,
        maximum=2**63 - 1,
    )

    def __post_init__(self) -> None:
        check_options(self)
        if self.image_size % 4:
            raise InvalidParameterError(
                f"image_size: must be a multiple of 4, got {self.image_size}"
            )


@dataclass(frozen=True)
class FastLossConfig:
    """The perceptual loss a fast-engine network is trained with (Johnson et al. 2016).

    Content: MSE of VGG19 relu2_2 features. Style: sum over relu1_1..relu4_1 of the MSE between
    Gram matrices normalised by C·H·W, times `style_weight`. TV: mean absolute difference of
    neighbouring pixels (image in [0, 1]) times `tv_weight`. With these normalisations a style
    weight of 1-3 against content 1 is the useful range (3 is strong but keeps the photo
    readable); the default TV weight equals 0.1 on a 0-255 image.
    `style_size`: a larger painting gives smaller brush strokes relative to the photo.
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

    content_weight: float = option(
        1.0, label="Content weight", help="weight of the content term", minimum=0.0, maximum=1e9
    )
    style_weight: float = option(
        3.0,
        label="Style weight",
        help="weight of the style term (1-3 against content 1; 3 is strong)",
        minimum=0.0,
        maximum=1e9,
    )
    tv_weight: float = option(
        25.5,
        label="Smoothness (TV) weight",
        help="weight of the total variation term (25.5: 0.1 on a 0-255 image)",
        minimum=0.0,
        maximum=1e9,
    )
    style_size: int = option(
        0,
        label="Painting size (px)",
        help="painting long side px (0: the crop size)",
        minimum=0,
        maximum=4096,
    )
    style_balance: float = option(
        0.0,
        label="Style layer balance",
        help="0..1: weigh style layers toward equal relative distances (0: plain Gram MSE)",
        minimum=0.0,
        maximum=1.0,
    )
    content_target: float = option(
        0.0,
        label="Content distance target",
        help="adapt the content weight to hold this content distance (relu4_2; 0: fixed)",
        minimum=0.0,
        maximum=10.0,
    )
    content_hold: int = option(
        0,
        label="Hold the first steps' content",
        help="hold the content distance of the first N steps (the starting network's; 0: off)",
        minimum=0,
        maximum=10_000,
    )
    grid_weight: float = option(
        0.0,
        label="Grid penalty weight",
        help="penalise detail locked to the 4-px grid (hairlines), as a fraction of the "
        "content and style terms (0: off)",
        minimum=0.0,
        maximum=1e6,
    )

    content_layers: tuple[str, ...] = option(
        ("relu2_2",), label="Content layers", help="VGG19 layers the content term compares"
    )
    style_layers: tuple[str, ...] = option(
        ("relu1_1", "relu2_1", "relu3_1", "relu4_1"),
        label="Style layers",
        help="VGG19 layers whose Gram matrices the style term compares",
    )

    def __post_init__(self) -> None:
        check_options(self)
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


def _as_in(config: type, name: str, default: Any = dataclasses.MISSING) -> Any:
    """A recipe's field: the option `name` of `config` (label, help, range, flag), with the
    recipe's value (the config's default when none is given)."""
    (declared,) = (f for f in dataclasses.fields(config) if f.name == name)
    value = declared.default if default is dataclasses.MISSING else default
    return dataclasses.field(default=value, metadata=declared.metadata)


@dataclass(frozen=True)
class RefineRecipe:
    """How a painting's network is refined from the arbitrary pass on a CPU (docs/fast.md has
    how each recipe was tuned).

    Each field is the loop's or the loss's option of that name (its declaration, copied with
    the recipe's value), or `frozen`: the network's parts left untrained. A recipe is therefore
    a set of `restyle train fast --init arbitrary` options (`train_arguments`).
    """

    frozen: tuple[str, ...] = option(
        ("encoder", "head"),
        label="Parts left untrained",
        help="comma-separated parts left untrained (encoder, head)",
        flag="--freeze",
    )
    image_size: int = _as_in(TrainConfig, "image_size")
    batch_size: int = _as_in(TrainConfig, "batch_size", 4)
    style_size: int = _as_in(FastLossConfig, "style_size", 512)
    content_weight: float = _as_in(FastLossConfig, "content_weight", 1.5)
    style_weight: float = _as_in(FastLossConfig, "style_weight", 1.0)
    learning_rate: float = _as_in(TrainConfig, "learning_rate", 1e-4)
    content_layers: tuple[str, ...] = _as_in(FastLossConfig, "content_layers")
    style_layers: tuple[str, ...] = _as_in(FastLossConfig, "style_layers")
    style_balance: float = _as_in(FastLossConfig, "style_balance")
    content_target: float = _as_in(FastLossConfig, "content_target")
    content_hold: int = _as_in(FastLossConfig, "content_hold")
    grid_weight: float = _as_in(FastLossConfig, "grid_weight")

    def __post_init__(self) -> None:
        check_options(self)

    def loss(self, *, style_size: int | None = None) -> FastLossConfig:
        """The recipe's loss (the painting's long side `style_size` if given)."""
        names = {f.name for f in dataclasses.fields(FastLossConfig)}
        values = {k: v for k, v in dataclasses.asdict(self).items() if k in names}
        if style_size is not None:
            values["style_size"] = style_size
        return FastLossConfig(**values)

    def train_arguments(self) -> list[str]:
        """The recipe as `restyle train fast --init arbitrary` options, in field order.

        The options added after the first recipes were recorded (`_OMITTED_AT_0`) are left out
        at 0 (off), so the commands recorded before them are still their recipe's.
        """
        arguments = []
        for spec in option_specs(RefineRecipe):
            value = getattr(self, spec.name)
            if spec.name in _OMITTED_AT_0 and not value:
                continue
            if isinstance(value, tuple):
                text = ",".join(map(str, value))
            else:
                text = f"{value:g}" if spec.kind == "float" else str(value)
            arguments += [spec.cli_flag, text]
        return arguments


_OMITTED_AT_0 = frozenset({"content_target", "content_hold", "grid_weight"})


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


def as_dict(config: Any) -> dict[str, Any]:
    """A config as JSON-ready values (tuples become lists)."""
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()
    }
