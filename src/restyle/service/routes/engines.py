"""The engines this server runs and the options a request may set: the web page's controls."""

from __future__ import annotations

from fastapi import APIRouter

from restyle.engines.registry import installed_engines
from restyle.service.deps import SettingsDep
from restyle.service.form import engine_description
from restyle.service.schemas import EngineInfo, EnginesResponse

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
