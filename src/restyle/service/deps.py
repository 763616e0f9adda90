"""The routes' dependencies: what `create_app` put on `app.state`, the client, and the job that a
request's token opens.

A job's token comes as `Authorization: Bearer <token>`, or as `?token=` where a browser cannot
set headers (EventSource, <img>); /docs shows both as security schemes.
"""

from __future__ import annotations

import re
from typing import Annotated, cast

from fastapi import Depends, Path, Request, Security
from fastapi.openapi.models import APIKey, APIKeyIn
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase

from restyle.engines.holder import Engines
from restyle.service.errors import ApiError
from restyle.service.jobs import JOB_ID_PATTERN, JobRecord, token_matches
from restyle.service.metrics import ServiceMetrics
from restyle.service.personal import PersonalStyle, is_personal
from restyle.service.places import Places
from restyle.service.settings import ServiceSettings
from restyle.service.stores.base import Backend

JobId = Annotated[str, Path(pattern=JOB_ID_PATTERN)]


def get_backend(request: Request) -> Backend:
    return cast(Backend, request.app.state.backend)


def get_settings(request: Request) -> ServiceSettings:
    return cast(ServiceSettings, request.app.state.settings)


def get_metrics(request: Request) -> ServiceMetrics:
    return cast(ServiceMetrics, request.app.state.metrics)


def get_engines(request: Request) -> Engines:
    """The serving process's engines (embedded mode: the same ones its workers use)."""
    return cast(Engines, request.app.state.engines)


def get_places(request: Request) -> Places:
    return cast(Places, request.app.state.places)


def get_client(request: Request) -> str:
    """Who sent the request, for the per-client job limit."""
    return request.client.host if request.client else "unknown"


BackendDep = Annotated[Backend, Depends(get_backend)]
SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
EnginesDep = Annotated[Engines, Depends(get_engines)]
ClientDep = Annotated[str, Depends(get_client)]
PlacesDep = Annotated[Places, Depends(get_places)]


class _BearerToken(SecurityBase):
    """`Authorization: Bearer <token>`; None when the header is missing or malformed."""

    def __init__(self) -> None:
        self.model = HTTPBearerModel(description="the job's token, from POST /api/jobs")
        self.scheme_name = "jobToken"

    async def __call__(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        match = re.fullmatch(r"Bearer\s+(\S+)", header.strip())
        return match.group(1) if match else None


class _QueryToken(SecurityBase):
    """`?token=<token>`, for EventSource and <img>, which cannot set headers."""

    def __init__(self) -> None:
        self.model = APIKey(
            **{"in": APIKeyIn.query},
            name="token",
            description="the job's token, where a header cannot be sent",
        )
        self.scheme_name = "jobTokenQuery"

    async def __call__(self, request: Request) -> str | None:
        return request.query_params.get("token")


async def job_token(
    bearer: Annotated[str | None, Security(_BearerToken())],
    query: Annotated[str | None, Security(_QueryToken())],
) -> str | None:
    """The request's job token: the header's, else the query's."""
    return bearer if bearer is not None else query


def authorised_job(
    job_id: JobId, backend: BackendDep, token: Annotated[str | None, Depends(job_token)]
) -> JobRecord:
    """The job `job_id`, if the request's token opens it: 404 no such job, 401 no token,
    403 another job's token."""
    record = backend.jobs.get(job_id)
    if record is None:
        raise ApiError(404, "not_found", f"no job {job_id!r} (finished jobs expire)")
    if token is None:
        raise ApiError(401, "unauthorized", "this job needs its token: Authorization: Bearer")
    if not token_matches(token, record):
        raise ApiError(403, "forbidden", "the token does not match this job")
    return record


AuthorisedJob = Annotated[JobRecord, Depends(authorised_job)]
TokenDep = Annotated[str | None, Depends(job_token)]
"""The request's token, if it has one: a personal style's owner's, for the routes that take a
style id."""


def owned_style(backend: Backend, style_id: str, token: str | None) -> PersonalStyle:
    """The personal style `style_id`, if `token` owns it; 404 otherwise, whether it does not
    exist or is someone else's (its id tells nothing)."""
    style = backend.personal.get(style_id) if is_personal(style_id) else None
    if style is None or not style.owned_by(token):
        raise ApiError(404, "unknown_style", f"no style {style_id!r}")
    return style
