"""What a job is: its options as the client sent them, and its record as the store keeps it."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

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
    """A stylization request's options, validated before anything is queued.

    Limits that depend on the server's settings (size, iterations) are checked by the API
    against `ServiceSettings`; here only what is absurd everywhere.
    """

    model_config = {"extra": "forbid", "frozen": True}

    method: Literal["gatys", "fast", "arbitrary"] = "fast"
    style: str | None = Field(None, pattern=STYLE_ID_PATTERN)
    strength: float = Field(1.0, ge=0.0, le=1.0)
    preserve_color: Literal["none", "luminance", "histogram", "mean_cov"] = "none"
    size: int | None = Field(None, ge=16)
    iterations: int | None = Field(None, ge=1)
    style_weight: float | None = Field(None, gt=0.0, le=1e9)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    format: Literal["png", "jpeg", "webp"] = "png"

    @field_validator("strength", "style_weight")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    def engine_options(self) -> dict[str, Any]:
        """Keyword options for `restyle.api.stylize_tensor`."""
        options: dict[str, Any] = {"strength": self.strength, "preserve_color": self.preserve_color}
        if self.size is not None:
            options["size"] = self.size
        if self.method == "gatys":
            if self.iterations is not None:
                options["iterations"] = self.iterations
                options["coarse_iterations"] = max(1, self.iterations // 2)
            if self.style_weight is not None:
                options["style_weight"] = self.style_weight
            if self.seed is not None:
                options["seed"] = self.seed
        return options


class JobError(BaseModel):
    code: str
    message: str


class JobRecord(BaseModel):
    """One job as stored: never holds the client's token, only its hash."""

    id: str
    token_sha256: str
    client: str
    options: JobOptions
    style_upload: bool = False
    status: JobStatus = JobStatus.QUEUED
    progress: float = 0.0
    message: str = ""
    error: JobError | None = None
    priority: int = 0  # higher first: synchronous requests jump the queue
    attempts: int = 0
    cancel_requested: bool = False
    preview_version: int = 0
    created_at: float = Field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = None
    result_type: str = ""

    def public(self) -> dict[str, Any]:
        """What the job's owner may see."""
        return {
            "id": self.id,
            "status": self.status.value,
            "progress": round(self.progress, 4),
            "message": self.message,
            "error": self.error.model_dump() if self.error else None,
            "options": self.options.model_dump(exclude_none=True),
            "style_upload": self.style_upload,
            "attempts": self.attempts,
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


JOB_ID_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"
