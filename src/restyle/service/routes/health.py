"""Operations: liveness, readiness (503 while the job store does not answer or, embedded, its
data directory cannot take a file or is almost full), metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

from restyle.service.deps import BackendDep, MetricsDep
from restyle.service.schemas import HealthResponse, ReadyResponse

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> HealthResponse:
    return HealthResponse()


@router.get(
    "/readyz",
    responses={503: {"model": ReadyResponse, "description": "Jobs cannot be stored now"}},
    response_model_exclude_none=True,
)
def readyz(backend: BackendDep, response: Response) -> ReadyResponse:
    reason = backend.unready_reason()
    response.status_code = 200 if reason is None else 503
    return ReadyResponse(ready=reason is None, mode=backend.mode, reason=reason)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics_endpoint(metrics: MetricsDep) -> Response:
    """Prometheus text format."""
    return Response(metrics.render(), media_type="text/plain; version=0.0.4")
