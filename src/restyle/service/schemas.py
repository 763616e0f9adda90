"""The API's response bodies as pydantic models: what /docs and /openapi.json describe.

Job bodies are built from `JobRecord.public()` (`JobStatusResponse.model_validate(...)`), so what
a job's owner may see is decided in one place; `options` stays an open object here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from restyle.engines.choice import DEFAULT_CONTENT_HW
from restyle.imaging import DEFAULT_LIMITS
from restyle.service.jobs import JobStatus


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, machine-readable: e.g. `invalid_image`, `not_found`")
    message: str = Field(description="for people: what was wrong")


class RequestErrorDetail(ErrorDetail):
    request_id: str | None = Field(
        None, description="this request's id (also `X-Request-ID`), as the server's log has it"
    )


class ErrorResponse(BaseModel):
    """Every error the API returns, whatever its status."""

    error: RequestErrorDetail


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyResponse(BaseModel):
    ready: bool = Field(description="whether jobs can be stored now (503 when not)")
    mode: str = Field(description="`embedded` or `redis`")
    reason: str | None = Field(None, description="why not ready (absent when ready)")


class StyleInfo(BaseModel):
    id: str
    title: str
    artist: str
    year: str
    licence: str
    thumbnail_url: str = Field(description="the painting, as a JPEG")
    engines: list[str] = Field(description="methods that can paint in this style")
    networks: list[str] = Field(
        description="the fast engine's networks of this style (refined: trained for this "
        "painting; arbitrary: the any-painting network with this painting's signals)"
    )
    network: str = Field(description="what the style runs by default, in words")


class PersonalStyleInfo(BaseModel):
    """A personal style, as its owner sees it."""

    id: str = Field(description="`my-` and 24 hex digits: a style id like any other")
    title: str = Field(description="the name it was given")
    owner: Literal["you"] = "you"
    created_at: float = Field(description="Unix time")
    expires_at: float | None = Field(description="Unix time it is deleted at; null: kept")
    kept: bool = Field(description="kept past the expiry (POST /api/styles/{id}/keep)")
    source: str | None = Field(description="the zoo style whose painting it refines; null: upload")
    steps: int = Field(description="training steps it had")
    loss: float | None = Field(description="its training loss at the end")
    thumbnail_url: str = Field(description="the painting, JPEG (with the token)")
    preview_url: str = Field(description="the network on a photo, JPEG (with the token)")
    engines: list[str] = Field(description="methods that can paint in this style")


class StyleRename(BaseModel):
    """PATCH /api/styles/{id}: what changes."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="the new name: printable text, 1 to 80 characters")


class RefineLimits(BaseModel):
    """What POST /api/refines accepts on this server."""

    max_minutes: float = Field(description="the longest budget a refinement may ask for")
    default_minutes: float = Field(description="the budget when a request gives none")
    budgets_minutes: list[float] = Field(description="the budgets offered, smallest first")
    max_personal_styles: int = Field(description="personal styles per token")
    personal_style_ttl_s: float = Field(description="a style not kept is deleted after this")


class StylesResponse(BaseModel):
    styles: list[StyleInfo]
    methods: list[str] = Field(description="methods this server runs")
    personal: list[PersonalStyleInfo] = Field(
        default_factory=list, description="the token's own styles (empty without a token)"
    )
    refine: RefineLimits | None = Field(None, description="what a refinement may ask for")


class EngineInfo(BaseModel):
    name: str
    title: str
    summary: str
    styles: str = Field(description="painting: any image is a style; trained: a style id")
    interactive: bool = Field(description="fast enough for POST /api/stylize")
    capabilities: dict[str, bool] = Field(
        description="what the engine can do: `feed_forward` (a network prepared once per "
        "style: videos, the live mode), `batches` (several photos in one pass), `steps` "
        "(optimises over steps, with previews), `init_image` (starts from a given image), "
        "`refine_source` (a personal style can be refined from its result)"
    )
    options: dict[str, Any] = Field(
        description="JSON schema of the options a request may set, with this server's limits"
    )
    limits: dict[str, float] = Field(
        default_factory=dict,
        description="this server's budget per job: `default_size`, the output long side when "
        "a request gives no size (a larger photo is scaled down); for gatys "
        "`max_megapixel_iterations`, output megapixels × iterations at most; for an engine "
        "that takes videos `max_video_bytes`, `max_video_seconds`, `max_video_frames`, "
        "`max_video_pixels` (of the input's frames) and `max_video_size` (the output's long "
        "side, and the size a larger clip is scaled down to when a request gives none)",
    )
    video_options: dict[str, Any] | None = Field(
        description="JSON schema of the options a video job may set besides `options`; null: "
        "this engine does not take videos",
    )
    video_formats: list[str] = Field(
        description="the containers a video job may ask for as `format` (mp4: H.264, webm: VP9)"
    )


class EnginesResponse(BaseModel):
    engines: list[EngineInfo] = Field(description="the engines this server runs, default first")


class EstimateRequest(BaseModel):
    """POST /api/estimate: a job as the stylization form would send it, and its photo's size."""

    model_config = ConfigDict(extra="forbid")

    method: str = Field(description="the engine, as `GET /api/engines` names it")
    width: int = Field(
        DEFAULT_CONTENT_HW[1], ge=1, le=DEFAULT_LIMITS.max_side, description="the photo's width, px"
    )
    height: int = Field(
        DEFAULT_CONTENT_HW[0],
        ge=1,
        le=DEFAULT_LIMITS.max_side,
        description="the photo's height, px",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="the engine's public options, as the form sends them (text such as `512`, "
        "`30s`, `none`) or as JSON values; an option not given has its default",
    )


class EstimateResponse(BaseModel):
    """How long the job is expected to take on this server's workers."""

    method: str
    seconds: float | None = Field(
        description="expected seconds for one photo; null: this engine's cost was never "
        "measured, or the workers' device is not on this machine"
    )
    text: str | None = Field(description="the same in words, e.g. `about 40 s`; null with seconds")
    device: str = Field(description="the workers' device in words, e.g. `CPU with 2 threads`")


class FrameCount(BaseModel):
    done: int = Field(description="frames stylized and written so far")
    total: int = Field(description="the clip's frames")


class TrainingProgress(BaseModel):
    step: int = Field(description="training steps done")
    loss: float | None = Field(description="the latest training loss")
    seconds_left: float | None = Field(description="of the time budget")
    budget_s: float = Field(description="the time budget, seconds")


class ArtefactReport(BaseModel):
    """A finished refinement's network on a few of its training photos, measured for patterns
    of its own (`restyle.metrics.artefacts`): the worst photo's value of each measure, and the
    findings past the limits (each photo's own values raise them where it scores high)."""

    streaks: float = Field(description="fine vertical colour stripes; a photo scores 1.0-1.1")
    grid: float = Field(description="grid or checkerboard energy; a photo scores under 0.005")
    seams: float = Field(description="the strongest straight seam; a photo scores 1.2-1.8")
    flagged: list[Literal["streaks", "grid", "seams"]] = Field(
        description="the measures past their limits on at least one photo"
    )
    flags: list[str] = Field(
        description="the findings in words, with the value and the limit: one per flagged "
        "measure, from the photo where it is highest"
    )
    checked_photos: int = Field(description="how many photos were stylized and measured")


class QueuePlace(BaseModel):
    """Where a queued job stands in its lane (`restyle.service.lanes`)."""

    lane: Literal["interactive", "heavy"]
    position: int = Field(description="1: the next job the lane's workers take")
    ahead: int = Field(description="jobs the lane's workers take before this one")
    workers: int | None = Field(description="workers serving the lane; null: none known")
    expected_start_s: float | None = Field(
        description="seconds from now until it is expected to start (null: no worker known)"
    )
    expected_finish_s: float | None = Field(
        description="seconds from now until it is expected to finish"
    )


class JobStatusResponse(BaseModel):
    """A job as its owner sees it (`JobRecord.public()`)."""

    id: str
    status: JobStatus
    progress: float = Field(description="0 to 1")
    message: str
    error: ErrorDetail | None = Field(description="why it failed; null unless it failed")
    options: dict[str, Any] = Field(description="the request's options, as validated")
    style_upload: bool = Field(description="whether the painting was uploaded")
    kind: Literal["image", "video", "refine"] = Field(
        description="what `content` was, or `refine`: a refinement (POST /api/refines)"
    )
    frames: FrameCount | None = Field(
        description="a video's frames done and in all; null: an image"
    )
    style_id: str | None = Field(
        None, description="a refinement's personal style, usable once the job has succeeded"
    )
    training: TrainingProgress | None = Field(None, description="a refinement's training")
    artefacts: ArtefactReport | None = Field(
        None, description="a succeeded refinement's artefact check; null until it has one"
    )
    attempts: int
    lane: Literal["interactive", "heavy"] = Field(
        description="the workers that run it: `interactive` (quick work) or `heavy` (slow work)"
    )
    expected_s: float | None = Field(
        description="its expected run time on the workers, seconds (null: not known)"
    )
    queue: QueuePlace | None = Field(
        None, description="its place in its lane while it is queued; null otherwise"
    )
    created_at: float = Field(description="Unix time")
    started_at: float | None
    finished_at: float | None


class JobUrls(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    self_: str = Field(alias="self", description="this job's status")
    events: str = Field(description="server-sent events: status, previews, end")
    result: str = Field(description="the image or video, once succeeded")
    preview: str = Field(description="the latest preview (gatys jobs; a video's latest frame)")


class JobCreatedResponse(JobStatusResponse):
    token: str = Field(
        description="the job's token: `Authorization: Bearer <token>` or `?token=`; shown once"
    )
    urls: JobUrls


class StylizeJsonResponse(BaseModel):
    """POST /api/stylize with `response=json`."""

    mime: str = Field(description="the image's type, e.g. image/png")
    image: str = Field(description="the image, base64")


_ERROR_DESCRIPTIONS = {
    400: "Bad request: an invalid image or parameter",
    401: "The job's token is missing",
    403: "The token does not match the job",
    408: "The request's body did not arrive in time",
    404: "Not found (or expired)",
    409: "The job has no result (yet)",
    413: "An upload, image or video is too large",
    416: "The requested byte range is outside the file",
    415: "Not a multipart/form-data body",
    422: "A path or query parameter is invalid",
    429: "Too many queued or running jobs for this client",
    500: "The stylization failed, or an internal error (details in the log, by request id)",
    503: "The server is busy, or its job store is unavailable (`Retry-After`)",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a route: these statuses answer with an `ErrorResponse`."""
    return {
        status: {"model": ErrorResponse, "description": _ERROR_DESCRIPTIONS[status]}
        for status in statuses
    }


def image_content(*, video: bool = False) -> dict[str, Any]:
    """`content` of a response that is an image in any of the output formats (with `video`: or
    a video)."""
    types = ["image/png", "image/jpeg", "image/webp"]
    if video:
        types += ["video/mp4", "video/webm"]
    return {media_type: {} for media_type in types}
