"""Live mode: the browser runs these style networks (ONNX) on camera frames itself."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from restyle import zoo
from restyle.engines.registry import painting_engine
from restyle.imaging import ImageLimits
from restyle.service.deps import BackendDep, EnginesDep, SettingsDep, TokenDep, owned_style
from restyle.service.errors import ApiError
from restyle.service.personal import is_personal
from restyle.service.requests import read_painting
from restyle.service.routes.styles import StyleId
from restyle.service.schemas import error_responses

router = APIRouter(tags=["live"])

_ONNX: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "An ONNX model"}
}


@router.get(
    "/api/styles/{style_id}/model.onnx",
    response_class=FileResponse,
    responses={**_ONNX, **error_responses(404, 422)},
)
async def style_onnx(
    style_id: StyleId,
    engines: EnginesDep,
    settings: SettingsDep,
    backend: BackendDep,
    token: TokenDep,
) -> FileResponse:
    """The style's `lite` network as ONNX: input `image` (1, 3, H, W) in [0, 1]. A personal
    style's network needs its owner's token (`?token=` or `Authorization: Bearer`)."""
    from restyle.service.live_models import network_onnx, zoo_style_onnx

    if is_personal(style_id):
        style = owned_style(backend, style_id, token)
        model = await asyncio.to_thread(backend.personal.model_path, style)
        path = await asyncio.to_thread(
            network_onnx, engines, model, cache_bytes=settings.onnx_cache_max_bytes
        )
        return FileResponse(path, media_type="application/octet-stream")
    if zoo.find(style_id) is None:
        raise ApiError(404, "unknown_style", f"no style {style_id!r}")
    path = await asyncio.to_thread(
        zoo_style_onnx, engines, style_id, cache_bytes=settings.onnx_cache_max_bytes
    )
    return FileResponse(path, media_type="application/octet-stream")


@router.post(
    "/api/live/model.onnx",
    response_class=FileResponse,
    responses={**_ONNX, **error_responses(400, 413, 415)},
)
async def painting_onnx_model(
    request: Request, settings: SettingsDep, engines: EnginesDep
) -> FileResponse:
    """The network the MetaNet writes for an uploaded painting (`style_image`), as ONNX."""
    from restyle.service.live_models import painting_onnx

    if painting_engine(feed_forward=True) is None:
        raise ApiError(
            400, "method_unavailable", "live mode with a painting needs the arbitrary engine"
        )
    painting = await read_painting(request, settings)
    limits = ImageLimits(
        max_bytes=settings.max_style_upload_bytes, max_pixels=settings.max_upload_pixels
    )
    path = await asyncio.to_thread(
        painting_onnx, engines, painting, limits=limits, cache_bytes=settings.onnx_cache_max_bytes
    )
    return FileResponse(path, media_type="application/octet-stream")
