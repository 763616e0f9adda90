"""How long a job is expected to take on this server's workers: POST /api/estimate's answer,
and each new job's `expected_s` (its lane and its place in line are reckoned from it).

The options are read as a job's form is read (the engine's public options, this server's limits,
its default output size for a photo of the given size: `budgets`), and the time comes from the
engines' cost model (`EngineSpec.estimate`), whose probe is timed once per process and device.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from restyle.devices import resolve_device
from restyle.engines.costs import device_words, duration
from restyle.engines.holder import Engines
from restyle.engines.registry import ENGINES, installed_engines
from restyle.errors import DeviceError
from restyle.service.budgets import sized
from restyle.service.errors import ApiError
from restyle.service.form import engine_values
from restyle.service.schemas import EstimateRequest, EstimateResponse
from restyle.service.settings import ServiceSettings

if TYPE_CHECKING:
    import torch

_TIMING = threading.Lock()
"""One estimate at a time: the first of a process times the probe, and two probes timed at once
would each take longer (the requests run in a thread pool)."""


def workers_device(settings: ServiceSettings) -> torch.device | None:
    """The device the workers run on, resolved as they resolve `settings.device` (None: one
    this machine does not have, as a scale-out worker's GPU may be)."""
    try:
        return resolve_device(settings.device or None)
    except DeviceError:
        return None


def job_values(
    method: str, given: Mapping[str, Any], settings: ServiceSettings, long_side: int
) -> dict[str, Any]:
    """The options a job of `method` with `given` runs with on a photo whose long side is
    `long_side` px: checked as a job's form is (a 422 naming the option otherwise), with the
    size a job would get."""
    parsed = engine_values(method, given, settings, status=422)
    return sized(method, parsed, long_side, settings)


def expected_time(
    request: EstimateRequest, settings: ServiceSettings, engines: Engines
) -> EstimateResponse:
    """The expected time of `request`'s job on the workers' device (see the module doc)."""
    method = request.method
    spec = ENGINES.get(method)
    if spec is None:
        raise ApiError(
            422,
            "invalid_parameter",
            f"method: unknown engine {method!r}; available: {', '.join(installed_engines())}",
        )
    if not spec.installed():
        raise ApiError(
            400, "method_unavailable", f"method {method!r}: its model is not installed here"
        )
    pixels = request.width * request.height
    if pixels > settings.max_upload_pixels:
        raise ApiError(
            422,
            "invalid_parameter",
            f"width, height: a {request.width}×{request.height} px photo has {pixels} pixels, "
            f"over this server's {settings.max_upload_pixels} (RESTYLE_MAX_UPLOAD_PIXELS)",
        )
    values = job_values(method, request.options, settings, max(request.width, request.height))
    device = workers_device(settings)
    if device is None:
        return EstimateResponse(method=method, seconds=None, text=None, device=settings.device)
    _, options, _ = spec.split(values)
    content_hw = (request.height, request.width)
    with _TIMING:
        expected = spec.estimate(options, content_hw, device, engines.setup_of(method))
    if expected is None:
        return EstimateResponse(method=method, seconds=None, text=None, device=device_words(device))
    return EstimateResponse(
        method=method,
        seconds=expected.seconds,
        text=f"about {duration(expected.seconds)}",
        device=expected.device,
    )


def job_seconds(
    method: str,
    values: Mapping[str, Any],
    content_hw: tuple[int, int],
    settings: ServiceSettings,
    engines: Engines,
    *,
    frames: int = 0,
) -> float | None:
    """The expected run time of a job of `method` with its checked `values` on a photo of
    `content_hw` (H, W) px, or on each of a clip's `frames` (None: not known here, e.g. the
    workers' device is not this machine's). A guess must never refuse a job: any failure is
    None."""
    spec = ENGINES[method]
    device = workers_device(settings)
    if device is None or min(content_hw) <= 0:
        return None
    try:
        own = {k: v for k, v in values.items() if spec.accepts([k])}  # a clip's options aside
        _, options, _ = spec.split(own)
        with _TIMING:
            expected = spec.estimate(options, content_hw, device, engines.setup_of(method))
    except Exception:  # an estimate is advice: the job runs without one
        return None
    if expected is None:
        return None
    return expected.seconds * max(frames, 1)


def warm(settings: ServiceSettings, engines: Engines) -> None:
    """Time the cost model's probes now, while the workers are idle: a probe timed beside a
    busy worker would inflate every estimate of the process."""
    for method in installed_engines():
        job_seconds(method, {}, (256, 256), settings, engines)
