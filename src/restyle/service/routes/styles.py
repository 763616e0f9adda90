"""The style zoo: the styles this server paints in, and each painting's picture."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse

from restyle import zoo
from restyle.engines.registry import installed_engines
from restyle.service.errors import ApiError
from restyle.service.jobs import STYLE_ID_PATTERN
from restyle.service.schemas import StyleInfo, StylesResponse, error_responses

router = APIRouter(tags=["styles"])

StyleId = Annotated[str, Path(pattern=STYLE_ID_PATTERN)]


@router.get("/api/styles")
def styles(request: Request) -> StylesResponse:
    methods = installed_engines()
    return StylesResponse(
        styles=[
            StyleInfo(
                id=entry.id,
                title=entry.title,
                artist=entry.artist,
                year=entry.year,
                licence=entry.licence,
                thumbnail_url=str(request.url_for("style_thumbnail", style_id=entry.id)),
                engines=list(methods),
                networks=sorted(entry.variants),
                provisional=entry.provisional,
            )
            for entry in zoo.entries()
        ],
        methods=methods,
    )


@router.get(
    "/api/styles/{style_id}/thumbnail",
    name="style_thumbnail",
    response_class=FileResponse,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The painting"},
        **error_responses(404, 422),
    },
)
def style_thumbnail(style_id: StyleId) -> FileResponse:
    entry = zoo.find(style_id)
    if entry is None:
        raise ApiError(404, "unknown_style", f"no style {style_id!r}")
    return FileResponse(entry.painting_path, media_type="image/jpeg")
