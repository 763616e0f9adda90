"""The engines this server runs and the options a request may set (the web page's controls),
and what a job of each is expected to take here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from restyle.engines.registry import installed_engines
from restyle.service.deps import EnginesDep, SettingsDep
from restyle.service.estimates import expected_time
from restyle.service.form import engine_description
from restyle.service.schemas import (
    EngineInfo,
    EnginesResponse,
    ErrorResponse,
    EstimateRequest,
    EstimateResponse,
    error_responses,
)

router = APIRouter(tags=["styles"])


@router.get("/api/engines")
def engines(settings: SettingsDep) -> EnginesResponse:
    """Each engine with the JSON schema of its options (types, choices, limits, defaults)."""
    return EnginesResponse(
        engines=[
            EngineInfo.model_validate(engine_description(name, settings))
            for name in installed_engines()
        ]
    )


_ESTIMATE_ERRORS: dict[int | str, dict[str, Any]] = {
    **error_responses(400),
    422: {
        "model": ErrorResponse,
        "description": "An unknown method or option, an option's value outside its limits, or "
        "a width or height outside 1 to the image limits",
    },
}


@router.post(
    "/api/estimate",
    summary="Expected time of a job on this server",
    responses=_ESTIMATE_ERRORS,
)
def estimate(
    request: EstimateRequest, settings: SettingsDep, engines: EnginesDep
) -> EstimateResponse:
    """How long a job of `method` with these `options` is expected to take on this server's
    workers for a photo of `width` × `height` px (default 512 × 512), from the engines' cost
    model: measured once per engine, scaled to the workers' device by a probe of tens of
    milliseconds timed once per process. `seconds` is null for an engine whose cost was never
    measured. A time limit (`time_limit_s`) caps the estimate; without a step count, the run
    takes the whole limit. Nothing runs and no job is made; the options are checked as
    `POST /api/jobs` checks them (`422 invalid_parameter` naming the option)."""
    return expected_time(request, settings, engines)
