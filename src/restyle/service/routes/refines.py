"""Refinements: POST /api/refines trains a painting's own network within a time budget; the
job is followed, cancelled and read like any other (`/api/jobs/{id}`, its events, its preview),
and its network becomes a personal style of the token (see `restyle.service.personal`)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from fastapi import APIRouter, Request

from restyle.engines.registry import trained_engine
from restyle.service.deps import BackendDep, ClientDep, PlacesDep, SettingsDep, TokenDep
from restyle.service.errors import ApiError
from restyle.service.jobs import (
    TOKEN_PATTERN,
    JobOptions,
    JobRecord,
    new_job_id,
    new_token,
    token_hash,
)
from restyle.service.lanes import lane_for
from restyle.service.personal import default_name, new_style_id, quota_full
from restyle.service.requests import read_refine_request
from restyle.service.routes.jobs import admit, created
from restyle.service.schemas import JobCreatedResponse, error_responses

router = APIRouter(tags=["refines"])


@router.post(
    "/api/refines",
    status_code=202,
    responses=error_responses(400, 409, 413, 415, 429, 503),
)
async def create_refine(
    request: Request,
    backend: BackendDep,
    settings: SettingsDep,
    client: ClientDep,
    owner_token: TokenDep,
    places: PlacesDep,
) -> JobCreatedResponse:
    """Queue a refinement (multipart form: `painting`, a file, or `painting_style`, a zoo style
    id; `minutes`, the time budget; `name`). With `Authorization: Bearer <token>` (a token an
    earlier job or refinement was given) the style is that token's and the job takes that
    token; without one a new token is made. The style's id (`style_id`) is usable once the job
    has succeeded."""
    parsed = await read_refine_request(request, settings)
    if owner_token is None:
        token, owner = new_token()
    elif re.fullmatch(TOKEN_PATTERN, owner_token):
        token, owner = owner_token, token_hash(owner_token)
    else:
        raise ApiError(
            400,
            "invalid_token",
            "the token must be one this server gave (43 URL-safe characters), or as long and "
            "as random",
        )
    owned = await asyncio.to_thread(backend.personal.of_owner, owner)
    full = quota_full(len(owned), settings.max_personal_styles)
    if full:
        raise ApiError(409, "quota_full", full)
    name = parsed.name or default_name(parsed.painting_style or "")
    record = JobRecord(
        id=new_job_id(),
        token_sha256=owner,
        client=client,
        options=JobOptions(
            method=trained_engine().name,
            style=parsed.painting_style,
            options={"minutes": parsed.minutes, "name": name},
        ),
        style_upload=parsed.painting is not None,
        kind="refine",
        style_id=new_style_id(),
        budget_s=parsed.minutes * 60,
        lane=lane_for(
            kind="refine",
            method=trained_engine().name,
            priority=0,
            expected_s=parsed.minutes * 60,
            interactive_max_s=settings.interactive_max_s,
        ),
        expected_s=parsed.minutes * 60,  # it trains for its budget
    )
    blobs: dict[str, bytes | Path] = {}
    if parsed.painting is not None:
        blobs["style"] = parsed.painting
    await admit(backend, settings, record, blobs)
    return await created(request, record, token, places)
