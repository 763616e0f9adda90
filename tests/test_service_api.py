"""The HTTP layer in process: the OpenAPI document's response and error schemas, the job
token dependency, and how a failed job's error code becomes an HTTP status.

The apps here are never started (no lifespan): no worker runs, so a job stays queued unless a
test moves it on. Requests go through httpx's ASGI transport, on one event loop per test.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI
from fastapi.routing import APIRoute
from tests.test_service import jpeg

from restyle.errors import InvalidImageError, WeightsError
from restyle.service import runner
from restyle.service.app import create_app
from restyle.service.errors import ID_FORMS, JOB_ERROR_STATUS, api_error_for_job
from restyle.service.jobs import JobError, JobOptions, JobRecord, JobStatus
from restyle.service.schemas import JobStatusResponse
from restyle.service.settings import ServiceSettings
from restyle.service.stores.base import Backend

ERROR_REF = "#/components/schemas/ErrorResponse"


@pytest.fixture()
def app(tmp_path: Path) -> Iterator[FastAPI]:
    app = create_app(ServiceSettings(data_dir=tmp_path, sync_timeout_s=0.5))
    yield app
    app.state.backend.stop()


class Client:
    """A synchronous client of an app, in process."""

    def __init__(self, app: FastAPI) -> None:
        self._loop = asyncio.Runner()
        transport = httpx.ASGITransport(app=app)
        self._client = httpx.AsyncClient(transport=transport, base_url="http://testserver")

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._loop.run(self._client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def close(self) -> None:
        self._loop.run(self._client.aclose())
        self._loop.close()


@pytest.fixture()
def client(app: FastAPI) -> Iterator[Client]:
    c = Client(app)
    yield c
    c.close()


@pytest.fixture()
def openapi(client: Client) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def photo() -> dict[str, tuple[str, bytes, str]]:
    return {"content": ("photo.jpg", jpeg(side=64), "image/jpeg")}


def schema_of(openapi: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any]:
    response = openapi["paths"][path][method]["responses"][status]
    ref = response["content"]["application/json"]["schema"]["$ref"]
    name = ref.rsplit("/", 1)[-1]
    return openapi["components"]["schemas"][name]


# The OpenAPI document -----------------------------------------------------------------------
def test_openapi_lists_the_response_schemas(openapi: dict[str, Any]) -> None:
    styles = schema_of(openapi, "/api/styles", "get", "200")
    assert {"styles", "methods"} <= set(styles["properties"])
    created = schema_of(openapi, "/api/jobs", "post", "202")
    assert {"id", "status", "token", "urls", "options"} <= set(created["properties"])
    assert "200" not in openapi["paths"]["/api/jobs"]["post"]["responses"]
    urls = openapi["components"]["schemas"]["JobUrls"]["properties"]
    assert set(urls) == {"self", "events", "result", "preview"}
    status = schema_of(openapi, "/api/jobs/{job_id}", "get", "200")
    assert set(status["properties"]) == set(JobStatusResponse.model_fields)
    assert status["properties"]["options"]["type"] == "object"  # open: not JobOptions' fields
    assert schema_of(openapi, "/api/jobs/{job_id}", "delete", "200") == status
    stylized = schema_of(openapi, "/api/stylize", "post", "200")
    assert set(stylized["properties"]) == {"mime", "image"}
    images = openapi["paths"]["/api/stylize"]["post"]["responses"]["200"]["content"]
    assert {"image/png", "image/jpeg", "image/webp"} <= set(images)
    ready = openapi["paths"]["/readyz"]["get"]["responses"]
    assert set(schema_of(openapi, "/readyz", "get", "503")["properties"]) == {
        "ready",
        "mode",
        "reason",
    }
    assert ready["200"]["content"] == ready["503"]["content"]


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/api/jobs", "post", {"400", "413", "415", "429", "503"}),
        ("/api/jobs/{job_id}", "get", {"401", "403", "404", "422"}),
        ("/api/jobs/{job_id}", "delete", {"401", "403", "404", "422"}),
        ("/api/jobs/{job_id}/result", "get", {"401", "403", "404", "409", "422"}),
        ("/api/jobs/{job_id}/events", "get", {"401", "403", "404"}),
        ("/api/stylize", "post", {"400", "413", "415", "500", "503"}),
        ("/api/styles/{style_id}/thumbnail", "get", {"404", "422"}),
        ("/api/live/model.onnx", "post", {"400", "413", "415"}),
    ],
)
def test_openapi_documents_the_error_model(
    openapi: dict[str, Any], path: str, method: str, statuses: set[str]
) -> None:
    responses = openapi["paths"][path][method]["responses"]
    assert statuses <= set(responses)
    for status in statuses:
        assert responses[status]["content"]["application/json"]["schema"]["$ref"] == ERROR_REF
    error = openapi["components"]["schemas"]["ErrorResponse"]
    assert error["required"] == ["error"]
    # FastAPI's own validation error shape is not what the API answers: it is not listed.
    assert "HTTPValidationError" not in openapi["components"]["schemas"]


def test_openapi_documents_the_job_token_both_ways(openapi: dict[str, Any]) -> None:
    schemes = openapi["components"]["securitySchemes"]
    assert [s["type"] for s in schemes.values()] == ["http", "apiKey"]
    query = next(s for s in schemes.values() if s["type"] == "apiKey")
    assert (query["in"], query["name"]) == ("query", "token")
    security = openapi["paths"]["/api/jobs/{job_id}/events"]["get"]["security"]
    assert len(security) == 2  # either one
    # A new job needs no token; one may come along, to use its owner's personal style.
    assert len(openapi["paths"]["/api/jobs"]["post"]["security"]) == 2


# Job error codes → HTTP statuses ------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("image_too_large", 413),
        ("invalid_image", 400),
        ("invalid_parameter", 400),
        ("invalid_style", 400),
        ("unknown_style", 400),
        ("timeout", 503),
        ("worker_lost", 503),
        ("input_lost", 500),
        ("out_of_memory", 500),
        ("diverged", 500),
        ("weights_error", 500),
        ("device_error", 500),
        ("stylize_error", 500),
        ("internal_error", 500),
        ("something_new", 500),
        ("invalid_but_unlisted", 500),
    ],
)
def test_a_job_error_code_maps_to_its_http_status(code: str, status: int) -> None:
    error = api_error_for_job(JobError(code=code, message=f"it went {code}"))
    assert (error.status, error.code, error.message) == (status, code, f"it went {code}")


def test_a_job_that_failed_without_a_reason_is_a_500() -> None:
    error = api_error_for_job(None)
    assert (error.status, error.code) == (500, "failed")


def test_every_code_the_runner_and_sweeper_write_is_in_the_table() -> None:
    import inspect

    from restyle.service import job_inputs, job_progress, jobs, runner, sweeper, video_job

    written = {code for _, code in jobs._LIBRARY_ERROR_CODES}
    for module in (runner, job_inputs, job_progress, video_job):
        written |= set(re.findall(r'JobError\(code="(\w+)"', inspect.getsource(module)))
    written |= set(re.findall(r'_fail\(backend, record\.id, "(\w+)"', inspect.getsource(sweeper)))
    assert {"input_lost", "timeout", "internal_error", "worker_lost"} <= written  # found them
    assert written <= set(JOB_ERROR_STATUS)


def fail_jobs_with(monkeypatch: pytest.MonkeyPatch, backend: Backend, code: str | None) -> None:
    """The next job waited for ends failed with `code` (None: with no error at all)."""

    async def finished(job_id: str, timeout: float) -> JobRecord | None:
        error = None if code is None else JobError(code=code, message=f"the job hit {code}")
        return backend.jobs.update(
            job_id, status=JobStatus.FAILED, error=error, finished_at=time.time()
        )

    monkeypatch.setattr(backend.jobs, "wait_finished", finished)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("image_too_large", 413),
        ("invalid_image", 400),
        ("diverged", 500),
        ("worker_lost", 503),
        ("a_code_from_the_future", 500),
        (None, 500),
    ],
)
def test_stylize_answers_a_failed_job_with_the_tables_status(
    app: FastAPI,
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
    code: str | None,
    status: int,
) -> None:
    backend = app.state.backend
    fail_jobs_with(monkeypatch, backend, code)
    response = client.post("/api/stylize", files=photo(), data={"style": "starry-night"})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == (code or "failed")
    assert backend.stats.queue_depth() == 0 and backend.jobs.running() == []  # the job is forgotten


def test_stylize_with_no_worker_times_out_as_503_and_forgets_its_job(
    app: FastAPI, client: Client
) -> None:
    response = client.post("/api/stylize", files=photo(), data={"style": "starry-night"})
    assert response.status_code == 503, response.text
    assert response.json() == {
        "error": {
            "code": "timeout",
            "message": "the server is busy; try again or use /api/jobs",
            "request_id": response.headers["x-request-id"],
        }
    }
    assert app.state.backend.stats.queue_depth() == 0


# Bodies and the token dependency ------------------------------------------------------------
def test_a_created_job_is_its_public_record_plus_token_and_urls(
    app: FastAPI, client: Client
) -> None:
    response = client.post("/api/jobs", files=photo(), data={"style": "starry-night"})
    assert response.status_code == 202, response.text
    job = response.json()
    record = app.state.backend.jobs.get(job["id"])
    assert {k: v for k, v in job.items() if k not in ("token", "urls", "queue")} == record.public()
    # Queued (this app's workers are not started): first in the interactive lane.
    assert record.lane == "interactive" and record.expected_s is not None
    assert job["queue"]["lane"] == "interactive" and job["queue"]["position"] == 1
    assert job["queue"]["ahead"] == 0 and job["queue"]["expected_start_s"] == 0.0
    base = f"http://testserver/api/jobs/{job['id']}"
    assert job["urls"] == {
        "self": base,
        "events": f"{base}/events",
        "result": f"{base}/result",
        "preview": f"{base}/preview",
    }
    bearer = {"Authorization": f"Bearer {job['token']}"}
    assert client.get(f"/api/jobs/{job['id']}", headers=bearer).json() == {
        **record.public(),
        "queue": job["queue"],
    }
    assert client.get(f"/api/jobs/{job['id']}?token={job['token']}").status_code == 200


def test_the_token_opens_only_its_own_job(client: Client) -> None:
    job = client.post("/api/jobs", files=photo(), data={"style": "starry-night"}).json()
    url = f"/api/jobs/{job['id']}"

    def status(**kwargs: Any) -> tuple[int, str]:
        response = client.get(url, **kwargs)
        return response.status_code, response.json()["error"]["code"]

    assert status() == (401, "unauthorized")
    assert status(headers={"Authorization": "Bearer nope"}) == (403, "forbidden")
    assert status(params={"token": "nope"}) == (403, "forbidden")
    assert status(params={"token": ""}) == (403, "forbidden")
    # A header that is not a bearer token does not count: the query's token is used.
    basic = client.get(url, headers={"Authorization": "Basic x"}, params={"token": job["token"]})
    assert basic.status_code == 200
    missing = client.get("/api/jobs/AAAAAAAAAAAAAAAAAAAAAA", params={"token": job["token"]})
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    cancelled = client.delete(url, headers={"Authorization": f"Bearer {job['token']}"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    result = client.get(f"{url}/result", params={"token": job["token"]})
    assert (result.status_code, result.json()["error"]["code"]) == (409, "no_result")


JOB_ID_WORDS = "is not a job id (16 to 64 letters, digits, '-' or '_')"
STYLE_ID_WORDS = (
    "is not a style id (up to 64 lower-case letters, digits or '-', not starting with '-', then "
    "optionally ':' and a network variant)"
)


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/api/jobs/not-a-job!", f"path.job_id: 'not-a-job!' {JOB_ID_WORDS}"),
        ("DELETE", "/api/jobs/too-short", f"path.job_id: 'too-short' {JOB_ID_WORDS}"),
        ("GET", "/api/jobs/too-short/result", f"path.job_id: 'too-short' {JOB_ID_WORDS}"),
        ("GET", "/api/jobs/too-short/events", f"path.job_id: 'too-short' {JOB_ID_WORDS}"),
        (
            "GET",
            "/api/styles/Starry%20Night/thumbnail",
            f"path.style_id: 'Starry Night' {STYLE_ID_WORDS}",
        ),
        ("GET", "/api/styles/-x/model.onnx", f"path.style_id: '-x' {STYLE_ID_WORDS}"),
        ("DELETE", "/api/styles/my.style", f"path.style_id: 'my.style' {STYLE_ID_WORDS}"),
    ],
)
def test_a_malformed_id_in_a_path_is_answered_in_words(
    client: Client, method: str, path: str, message: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == 422
    request_id = response.headers["x-request-id"]
    assert response.json() == {
        "error": {"code": "invalid_parameter", "message": message, "request_id": request_id}
    }


def test_a_malformed_style_id_in_a_form_is_answered_in_words(client: Client) -> None:
    response = client.post("/api/jobs", files=photo(), data={"style": "Starry Night"})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_parameter")
    assert response.json()["error"]["message"] == f"style: 'Starry Night' {STYLE_ID_WORDS}"


def test_every_id_pattern_of_a_path_has_its_words(openapi: dict[str, Any]) -> None:
    patterns = {
        parameter["schema"]["pattern"]
        for operations in openapi["paths"].values()
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path" and "pattern" in parameter["schema"]
    }
    assert patterns and patterns <= set(ID_FORMS), patterns - set(ID_FORMS)


def test_job_status_bodies_take_any_options(app: FastAPI) -> None:
    record = JobRecord(id="A" * 22, token_sha256="", client="c", options=JobOptions(style="x"))
    public = record.public() | {"options": {"method": "fast", "something": {"new": [1, 2]}}}
    public["queue"] = None
    assert JobStatusResponse.model_validate(public).model_dump(mode="json") == public


def test_readiness_is_503_with_the_same_body_when_the_store_does_not_answer(
    app: FastAPI, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert client.get("/readyz").json() == {"ready": True, "mode": "embedded"}
    monkeypatch.setattr(app.state.backend, "unready_reason", lambda: "no answer")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"ready": False, "mode": "embedded", "reason": "no answer"}
    assert client.get("/healthz").json() == {"status": "ok"}


# Errors no route handles, and what a client may read of them -------------------------------
def raise_in_a_route(app: FastAPI, exc: BaseException) -> str:
    """A route (first in the app) that raises `exc`: what a failing store or engine does."""

    def fail() -> None:
        raise exc

    app.router.routes.insert(0, APIRoute("/test-failure", fail, methods=["GET"]))
    return "/test-failure"


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (RuntimeError("boom at /srv/restyle-data/jobs/x"), 500, "internal_error"),
        (PermissionError(13, "Permission denied", "/srv/data/jobs/x"), 503, "store_unavailable"),
        (sqlite3.OperationalError("database or disk is full"), 503, "store_unavailable"),
        (redis.ConnectionError("Error 111 connecting to queue-host"), 503, "store_unavailable"),
        (MemoryError(), 500, "out_of_memory"),
        (WeightsError("weights /srv/models/x.safetensors: bad sha256"), 500, "weights_error"),
    ],
)  # fmt: skip
def test_an_unhandled_error_is_json_with_a_request_id_and_no_details(
    app: FastAPI,
    client: Client,
    caplog: pytest.LogCaptureFixture,
    exc: BaseException,
    status: int,
    code: str,
) -> None:
    response = client.get(raise_in_a_route(app, exc))
    assert response.status_code == status, response.text
    error = response.json()["error"]
    request_id = response.headers["x-request-id"]
    assert (error["code"], error["request_id"]) == (code, request_id)
    assert "/srv" not in response.text and "queue-host" not in response.text
    assert request_id in error["message"]
    assert ("retry-after" in response.headers) == (status == 503)
    assert any(request_id in r.getMessage() and r.exc_info for r in caplog.records)


def test_a_library_error_about_the_input_is_a_4xx_with_its_message(
    app: FastAPI, client: Client
) -> None:
    response = client.get(raise_in_a_route(app, InvalidImageError("content: not an image")))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_image"
    assert response.json()["error"]["message"] == "content: not an image"


def test_a_failed_jobs_error_names_no_server_path(
    app: FastAPI,
    client: Client,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created = client.post("/api/jobs", files=photo(), data={"style": "starry-night"}).json()

    # The painting step fails with an error that names a server path (the store's own failures
    # are outages, waited out: test_service_hostile.py).
    def fails(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(tmp_path / "cache" / "net.onnx"))

    monkeypatch.setattr(runner, "stylize_tensor", fails)
    settings, backend = app.state.settings, app.state.backend
    runner.run(backend, created["id"], settings, app.state.engines)
    response = client.get(
        f"/api/jobs/{created['id']}", headers={"Authorization": f"Bearer {created['token']}"}
    )
    status = response.json()
    assert status["status"] == "failed" and status["error"]["code"] == "internal_error"
    assert str(tmp_path) not in response.text and "Errno" not in response.text
    reference = re.fullmatch(r"internal error \(reference (\w+)\)", status["error"]["message"])
    assert reference is not None
    logged = [r for r in caplog.records if reference[1] in r.getMessage()]
    assert logged and str(tmp_path) in str(logged[0].exc_info[1] if logged[0].exc_info else "")


def multipart_body(boundary: str = "XyZ") -> bytes:
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="style"\r\n\r\n'
            f"starry-night\r\n--{boundary}\r\n"
            'Content-Disposition: form-data; name="content"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + jpeg(side=64)
        + f"\r\n--{boundary}--\r\n".encode()
    )


def test_a_body_shorter_than_its_content_length_is_a_truncated_request(client: Client) -> None:
    body = multipart_body()
    headers = {
        "content-type": "multipart/form-data; boundary=XyZ",
        "content-length": str(len(body)),
    }
    response = client.post("/api/jobs", content=body[: len(body) // 2], headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "truncated_request"
    assert response.headers["connection"] == "close"
