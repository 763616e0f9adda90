"""What a job is: its options as the client sent them, and its record as the store keeps it."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from restyle.engines.registry import ENGINES
from restyle.errors import (
    DeviceError,
    ImageTooLargeError,
    InvalidImageError,
    InvalidParameterError,
    InvalidVideoError,
    NumericalError,
    RestyleError,
    WeightsError,
)

STYLE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}(:[a-z]{1,16})?$"
"""A zoo style id, optionally with a network size ("starry-night:lite"): no dots, no slashes."""


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class JobOptions(BaseModel):
    """What a client asked for: the engine, the style, the result's format and the engine's
    options, validated before anything is queued.

    `options` holds only the engine's public options (see `restyle.engines.registry`), checked
    by the engine's own option classes (`requests.read_stylize_request` does that); the server's
    limits (size, iterations) are checked there too, against `ServiceSettings`.
    """

    model_config = {"extra": "forbid", "frozen": True}

    method: str = next(iter(ENGINES))  # the registry's first engine is the default
    style: str | None = Field(None, pattern=STYLE_ID_PATTERN)
    format: Literal["png", "jpeg", "webp", "mp4", "webm"] = "png"
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("method")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        if value not in ENGINES:
            raise ValueError(f"unknown engine {value!r}; available: {', '.join(ENGINES)}")
        return value

    def summary(self) -> dict[str, Any]:
        """The options as the client sees them: one flat mapping."""
        flat = {"method": self.method, "style": self.style, "format": self.format}
        return {k: v for k, v in {**flat, **self.options}.items() if v is not None}


class JobError(BaseModel):
    code: str
    message: str


_LIBRARY_ERROR_CODES: tuple[tuple[type[Exception], str], ...] = (
    (InvalidVideoError, "invalid_video"),  # before InvalidImageError, its base class
    (ImageTooLargeError, "image_too_large"),
    (InvalidImageError, "invalid_image"),
    (InvalidParameterError, "invalid_parameter"),
    (WeightsError, "weights_error"),
    (DeviceError, "device_error"),
    (NumericalError, "diverged"),
    (RestyleError, "stylize_error"),  # the base class last: any other library error
    (MemoryError, "out_of_memory"),
)


class JobStopped(Exception):
    """Raised inside an engine's or a training's progress callback to stop a job (cancelled,
    timed out, or taken over by a newer attempt)."""

    def __init__(self, status: JobStatus, error: JobError | None) -> None:
        super().__init__(status.value)
        self.status, self.error = status, error


def stop_unless_still_running(current: JobRecord | None, attempt: JobRecord) -> None:
    """Raise JobStopped when the job as stored (`current`) was cancelled or deleted, or has
    been taken over by a newer attempt than the one this worker runs (`attempt`)."""
    if current is None or current.cancel_requested:
        raise JobStopped(JobStatus.CANCELLED, None)
    if current.attempts != attempt.attempts:
        raise JobStopped(JobStatus.FAILED, None)  # a newer attempt owns the job now


def new_reference() -> str:
    """A short random id that ties an error a client sees to the server's log line about it."""
    return secrets.token_hex(8)


def library_error_code(exc: BaseException) -> str | None:
    """The error code of an error the library raises on purpose (or of running out of memory);
    None for anything else, which is a bug or an environment failure."""
    for kind, code in _LIBRARY_ERROR_CODES:
        if isinstance(exc, kind):
            return code
    return None


class JobRecord(BaseModel):
    """One job as stored: never holds the client's token, only its hash."""

    id: str
    token_sha256: str
    client: str
    options: JobOptions
    style_upload: bool = False
    kind: Literal["image", "video", "refine"] = "image"
    frames_total: int = 0  # a video's frames (counted by the API), else 0
    frames_done: int = 0
    # A refinement: the personal style it makes (an id chosen at submission), its time budget,
    # and how far its training is (steps, loss, seconds left).
    style_id: str = ""
    budget_s: float = 0.0
    train_step: int = 0
    train_loss: float | None = None
    seconds_left: float | None = None
    artefacts: dict[str, Any] | None = None  # a finished refinement's check (ArtefactReport)
    status: JobStatus = JobStatus.QUEUED
    progress: float = 0.0
    message: str = ""
    error: JobError | None = None
    priority: int = 0  # higher first: synchronous requests jump their lane's line
    lane: Literal["interactive", "heavy"] = "heavy"
    """Which workers run it (`restyle.service.lanes`): quick work never waits behind slow."""
    expected_s: float | None = None
    """Its expected run time on the workers (the cost model's estimate at submission)."""
    attempts: int = 0
    cancel_requested: bool = False
    preview_version: int = 0
    created_at: float = Field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = None
    claimant: str = ""  # the claim running it (Redis): a claim repeated after a lost reply
    result_type: str = ""

    def public(self) -> dict[str, Any]:
        """What the job's owner may see."""
        return {
            "id": self.id,
            "status": self.status.value,
            "progress": round(self.progress, 4),
            # A finished job says how it ended: a worker's last progress write can land just
            # after a cancel ("step 353/600" on a cancelled job).
            "message": self.status.value if self.status.finished else self.message,
            "error": self.error.model_dump() if self.error else None,
            "options": self.options.summary(),
            "style_upload": self.style_upload,
            "kind": self.kind,
            "frames": (
                {"done": self.frames_done, "total": self.frames_total}
                if self.kind == "video"
                else None
            ),
            "style_id": self.style_id or None,
            "training": (
                {
                    "step": self.train_step,
                    "loss": self.train_loss,
                    "seconds_left": self.seconds_left,
                    "budget_s": self.budget_s,
                }
                if self.kind == "refine"
                else None
            ),
            "artefacts": self.artefacts,
            "attempts": self.attempts,
            "lane": self.lane,
            "expected_s": None if self.expected_s is None else round(self.expected_s, 1),
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


def new_job_id() -> str:
    """128 random bits: unguessable, URL-safe."""
    return secrets.token_urlsafe(16)


def new_token() -> tuple[str, str]:
    """(token for the client, its sha256 for the store)."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str | None, record: JobRecord) -> bool:
    return token is not None and hmac.compare_digest(token_hash(token), record.token_sha256)


TOKEN_PATTERN = r"^[A-Za-z0-9_-]{43,128}$"
"""A token a client may bring to a refinement to own its style: one the server issued (43
URL-safe characters), or as long and as random."""


JOB_ID_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"
