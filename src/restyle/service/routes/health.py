"""Operations: liveness, readiness (503 while the job store does not answer), metrics."""

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
    responses={503: {"model": ReadyResponse, "description": "The job store does not answer"}},
)
def readyz(backend: BackendDep, response: Response) -> ReadyResponse:
    ready = backend.ready()
    response.status_code = 200 if ready else 503
    return ReadyResponse(ready=ready, mode=backend.mode)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics_endpoint(metrics: MetricsDep) -> Response:
    """Prometheus text format."""
    return Response(metrics.render(), media_type="text/plain; version=0.0.4")
