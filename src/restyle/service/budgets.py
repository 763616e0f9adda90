"""What a job may cost on this server: which engines take videos, the largest output, the
bounds on options, and each job's budget from its photo's or clip's dimensions.

A photo's output is no larger than `default_size` unless a size is asked for; an engine that
optimises over steps (`EngineSpec.steps`) has its own largest size and at most
`max_gatys_megapixel_iterations` of work (output megapixels × iterations).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from restyle.engines.registry import ENGINES
from restyle.errors import InvalidParameterError
from restyle.imaging import ImageHeader
from restyle.options import OptionSpec
from restyle.service.errors import ApiError
from restyle.service.jobs import JobOptions
from restyle.service.settings import ServiceSettings

if TYPE_CHECKING:
    from restyle.video.io import VideoInfo


def public_options(method: str) -> dict[str, OptionSpec]:
    """Engine `method`'s public options by name: what a client may set for it."""
    return {spec.name: spec for spec in ENGINES[method].public_option_specs()}


def takes_video(method: str) -> bool:
    """Whether jobs of engine `method` may be videos: the feed-forward engines, whose prepared
    pass takes a clip's frames in batches (an engine that optimises every frame takes minutes
    each on a CPU)."""
    return ENGINES[method].feed_forward


def job_budget(method: str, settings: ServiceSettings) -> dict[str, float]:
    """The budget `budgeted` applies, as `GET /api/engines` shows it beside the options."""
    budget: dict[str, float] = {
        "default_size": min(settings.default_size, size_limit(method, settings))
    }
    if ENGINES[method].steps:
        budget["max_megapixel_iterations"] = settings.max_gatys_megapixel_iterations
    if takes_video(method):
        budget |= {
            "max_video_bytes": settings.max_video_bytes,
            "max_video_seconds": settings.max_video_seconds,
            "max_video_frames": settings.max_video_frames,
            "max_video_pixels": settings.max_video_pixels,
            "max_video_size": min(settings.max_video_size, size_limit(method, settings)),
        }
    return budget


def size_limit(method: str, settings: ServiceSettings, *, video: bool = False) -> int:
    """The largest output long side this server accepts for `method` (for a video's frames);
    an engine that optimises over steps has its own (`max_gatys_size`)."""
    if video:
        return min(settings.max_video_size, settings.max_size)
    return settings.max_gatys_size if ENGINES[method].steps else settings.max_size


def server_bounds(
    method: str, settings: ServiceSettings, *, video: bool = False
) -> dict[str, tuple[int, int]]:
    """This server's limits on options, tighter than the engines': they bound a job's cost."""
    return {
        "size": (16, size_limit(method, settings, video=video)),
        "iterations": (1, settings.max_iterations),
    }


def check_limits(
    parsed: dict[str, Any], method: str, settings: ServiceSettings, *, video: bool = False
) -> None:
    bounds = server_bounds(method, settings, video=video)
    for name, (low, high) in bounds.items():
        value = parsed.get(name)
        if value is not None and not (isinstance(value, int) and low <= value <= high):
            kind = " videos" if video else ""
            raise InvalidParameterError(
                f"{name}: {low}..{high} for {method}{kind} on this server, got {value!r}"
            )
    # No size given: the engine's own default when this server allows it, else its largest.
    default = getattr(public_options(method).get("size"), "default", None)
    if parsed.get("size") is None and isinstance(default, int) and default > bounds["size"][1]:
        parsed["size"] = bounds["size"][1]


def sized(
    method: str, values: Mapping[str, Any], long_side: int, settings: ServiceSettings
) -> dict[str, Any]:
    """`values` with the output size a job of a photo whose long side is `long_side` px runs
    at: no size (or 0, the photo's own) means at most `default_size`."""
    sized_values = dict(values)
    specs = public_options(method)
    size = sized_values.get("size", getattr(specs.get("size"), "default", None))
    cap = min(settings.default_size, size_limit(method, settings))
    if "size" in specs and not size and long_side > cap:
        sized_values["size"] = cap
    return sized_values


def budgeted(options: JobOptions, photo: ImageHeader, settings: ServiceSettings) -> JobOptions:
    """`options` within this server's budget for a photo of this size: no size (or 0, the
    photo's own) means at most `default_size`; for an engine that optimises over steps, the
    output megapixels × iterations must stay under `max_gatys_megapixel_iterations` (400
    `over_budget`)."""
    method = options.method
    long_side = max(photo.width, photo.height)
    values = sized(method, options.options, long_side, settings)
    specs = public_options(method)
    size = values.get("size", getattr(specs.get("size"), "default", None))
    if ENGINES[method].steps:
        _, engine_options, _ = ENGINES[method].split(values)
        if engine_options.open_ended:  # as many steps as fit: the time limit is the budget
            _check_time_limit(engine_options.time_limit_s, settings)
            return options.model_copy(update={"options": values})
        iterations = engine_options.final_steps
        scale = (size or long_side) / long_side
        megapixels = photo.width * photo.height * scale * scale / 1e6
        cost = megapixels * iterations
        if cost > settings.max_gatys_megapixel_iterations:
            raise ApiError(
                400,
                "over_budget",
                f"size, iterations: {megapixels:.2f} Mpx output × {iterations} iterations = "
                f"{cost:.0f} Mpx·iterations, over this server's "
                f"{settings.max_gatys_megapixel_iterations:g} "
                "(RESTYLE_MAX_GATYS_MEGAPIXEL_ITERATIONS); ask for a smaller size or fewer "
                "iterations",
            )
    return options.model_copy(update={"options": values})


def _check_time_limit(seconds: float, settings: ServiceSettings) -> None:
    limit = settings.job_time_limit()
    if seconds > limit:
        raise ApiError(
            400,
            "over_budget",
            f"time_limit_s: {seconds:g} s, over this server's job time limit of {limit:g} s "
            "(RESTYLE_JOB_TIMEOUT_S); ask for less time",
        )


def budgeted_video(options: JobOptions, clip: VideoInfo, settings: ServiceSettings) -> JobOptions:
    """`options` for this clip: no size (or 0, the clip's own) means at most `max_video_size`.
    (Any clip's sound goes into either container: what WebM cannot hold is re-encoded to Opus.)"""
    values = dict(options.options)
    cap = size_limit(options.method, settings, video=True)
    if not values.get("size") and max(clip.width, clip.height) > cap:
        values["size"] = cap
    return options.model_copy(update={"options": values})
