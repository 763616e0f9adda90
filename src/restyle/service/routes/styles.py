"""The styles: the zoo (everyone's) and a token's personal styles (its refinements)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import FileResponse

from restyle import zoo
from restyle.engines.registry import installed_engines
from restyle.service.deps import BackendDep, SettingsDep, TokenDep, owned_style
from restyle.service.errors import ApiError
from restyle.service.jobs import STYLE_ID_PATTERN, token_hash
from restyle.service.personal import PersonalStyle, is_personal
from restyle.service.requests import style_name
from restyle.service.schemas import (
    PersonalStyleInfo,
    RefineLimits,
    StyleInfo,
    StyleRename,
    StylesResponse,
    error_responses,
)
from restyle.service.settings import ServiceSettings

router = APIRouter(tags=["styles"])

StyleId = Annotated[str, Path(pattern=STYLE_ID_PATTERN)]

_JPEG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/jpeg": {}}, "description": "A JPEG"}
}


def personal_info(style: PersonalStyle, request: Request) -> dict[str, Any]:
    """A personal style as its owner sees it (`PersonalStyleInfo`); its pictures' URLs need
    the token too (`?token=` in an `<img src>`)."""
    return PersonalStyleInfo(
        id=style.id,
        title=style.name,
        owner="you",
        created_at=style.created_at,
        expires_at=style.expires_at,
        kept=style.expires_at is None,
        source=style.source or None,
        steps=style.steps,
        loss=style.loss,
        thumbnail_url=str(request.url_for("style_thumbnail", style_id=style.id)),
        preview_url=str(request.url_for("style_preview", style_id=style.id)),
        engines=list(installed_engines()),
    ).model_dump()


def refine_limits(settings: ServiceSettings) -> RefineLimits:
    budgets = sorted(b for b in settings.refine_budgets_minutes if b <= settings.refine_max_minutes)
    return RefineLimits(
        max_minutes=settings.refine_max_minutes,
        default_minutes=min(settings.refine_default_minutes, settings.refine_max_minutes),
        budgets_minutes=budgets or [settings.refine_max_minutes],
        max_personal_styles=settings.max_personal_styles,
        personal_style_ttl_s=settings.personal_style_ttl_s,
    )


@router.get("/api/styles")
async def styles(
    request: Request, backend: BackendDep, settings: SettingsDep, token: TokenDep
) -> StylesResponse:
    """The zoo; with a token (`Authorization: Bearer`, or `?token=`), that token's personal
    styles too, under `personal`."""
    methods = installed_engines()
    personal: list[PersonalStyleInfo] = []
    if token is not None:
        mine = await asyncio.to_thread(backend.personal.of_owner, token_hash(token))
        personal = [PersonalStyleInfo.model_validate(personal_info(s, request)) for s in mine]
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
                network=entry.default_variant.summary,
            )
            for entry in zoo.entries()
        ],
        methods=methods,
        personal=personal,
        refine=refine_limits(settings),
    )


def _personal_picture(backend: BackendDep, style_id: str, token: str | None, name: str) -> Response:
    owned_style(backend, style_id, token)
    data = backend.personal.file(style_id, name)
    if not data:
        raise ApiError(404, "not_found", f"style {style_id!r} has no {name.split('.')[0]}")
    return Response(data, media_type="image/jpeg", headers={"cache-control": "private"})


@router.get(
    "/api/styles/{style_id}/thumbnail",
    name="style_thumbnail",
    response_class=FileResponse,
    responses={**_JPEG, **error_responses(404, 422)},
)
def style_thumbnail(style_id: StyleId, backend: BackendDep, token: TokenDep) -> Response:
    """The painting (a personal style's: with its owner's token)."""
    if is_personal(style_id):
        return _personal_picture(backend, style_id, token, "thumbnail.jpg")
    entry = zoo.find(style_id)
    if entry is None:
        raise ApiError(404, "unknown_style", f"no style {style_id!r}")
    return FileResponse(entry.painting_path, media_type="image/jpeg")


@router.get(
    "/api/styles/{style_id}/preview",
    name="style_preview",
    response_class=Response,
    responses={**_JPEG, **error_responses(404, 422)},
)
def style_preview(style_id: StyleId, backend: BackendDep, token: TokenDep) -> Response:
    """A personal style's network on a photo (with its owner's token)."""
    return _personal_picture(backend, style_id, token, "preview.jpg")


@router.delete("/api/styles/{style_id}", status_code=204, responses=error_responses(404, 422))
def delete_style(style_id: StyleId, backend: BackendDep, token: TokenDep) -> Response:
    """Delete a personal style and its files (with its owner's token)."""
    owned_style(backend, style_id, token)
    backend.personal.delete(style_id)
    return Response(status_code=204)


@router.post("/api/styles/{style_id}/keep", responses=error_responses(404, 422))
def keep_style(
    style_id: StyleId, request: Request, backend: BackendDep, token: TokenDep
) -> PersonalStyleInfo:
    """Keep a personal style past its expiry (with its owner's token); it stays until deleted."""
    return _changed(style_id, request, backend, token, expires_at=None)


@router.patch("/api/styles/{style_id}", responses=error_responses(400, 404, 422))
def rename_style(
    style_id: StyleId, change: StyleRename, request: Request, backend: BackendDep, token: TokenDep
) -> PersonalStyleInfo:
    """Rename a personal style (with its owner's token)."""
    name = style_name(change.name)
    if not name:
        raise ApiError(400, "invalid_parameter", "name: must not be empty")
    return _changed(style_id, request, backend, token, name=name)


def _changed(
    style_id: str, request: Request, backend: BackendDep, token: str | None, **fields: Any
) -> PersonalStyleInfo:
    """Change an owned personal style's record; the style as it now is."""
    owned_style(backend, style_id, token)
    style = backend.personal.update(style_id, **fields)
    if style is None:
        raise ApiError(404, "unknown_style", f"no style {style_id!r}")
    return PersonalStyleInfo.model_validate(personal_info(style, request))
