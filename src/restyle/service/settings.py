"""The service's named settings: environment variables with the prefix `RESTYLE_`.

Every limit a client could push against is here, with a default that keeps a laptop responsive:
e.g. `RESTYLE_MAX_UPLOAD_BYTES=20000000`, `RESTYLE_REDIS_URL=redis://gpu-queue:6379/0`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from restyle.engines.arbitrary_config import ArbitrarySetup, Network
from restyle.engines.holder import Engines
from restyle.training.config import PERSONAL_CPU


class ServiceSettings(BaseSettings):
    """How `restyle serve` and `restyle worker` run (see the module docstring)."""

    model_config = SettingsConfigDict(env_prefix="RESTYLE_", frozen=True)

    data_dir: Path = Field(Path("restyle-data"), description="job store, uploads and results")
    redis_url: str = Field("", description="empty: embedded mode; else the Redis of the queue")
    device: str = Field("", description="compute device of the embedded workers (empty: auto)")
    arbitrary_network: Network = Field(
        "microast", description="the arbitrary engine's network: microast or metanet"
    )
    # The lanes (restyle.service.lanes): quick work never waits behind slow work.
    interactive_workers: int = Field(
        1,
        ge=1,
        le=64,
        description="embedded mode: threads that run quick jobs (the interactive lane)",
    )
    heavy_workers: int = Field(
        1,
        ge=1,
        le=64,
        description="embedded mode: threads that run slow jobs (gatys, videos, refinements)",
    )
    heavy_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="how much lower the CPU priority (nice) of the embedded heavy lane's thread, "
        "and of a `restyle worker --lanes heavy`, is: a quick request still gets the cores",
    )
    interactive_max_s: float = Field(
        10,
        gt=0,
        description="a still of a one-pass engine expected to take longer goes to the heavy lane",
    )

    max_upload_bytes: int = Field(20_000_000, ge=1024, description="a photo upload")
    max_style_upload_bytes: int = Field(10_000_000, ge=1024, description="a painting upload")
    max_upload_pixels: int = Field(40_000_000, ge=64 * 64, description="width × height")
    max_size: int = Field(4096, ge=64, le=16384, description="output long side (fast, arbitrary)")
    max_gatys_size: int = Field(1024, ge=64, le=16384, description="output long side (gatys)")
    max_iterations: int = Field(2000, ge=1, le=100_000, description="gatys iterations")
    # A job's cost follows its output's pixels, not its upload's bytes: a 100 kB PNG can hold
    # 40 Mpx. These bound what one request can make a worker do.
    default_size: int = Field(
        1024,
        ge=16,
        le=16384,
        description="output long side when a request gives no size: a larger photo is scaled down",
    )
    max_gatys_megapixel_iterations: float = Field(
        500,
        gt=0,
        description="gatys: output megapixels × iterations at most (1024² at 475 iterations)",
    )
    # Videos (a clip as a job's `content`): checked from the container before a job exists (the
    # API demuxes it, never decodes it); the frames are what a worker's time goes to.
    max_video_bytes: int = Field(200_000_000, ge=1024, description="a video upload")
    max_video_seconds: float = Field(120, gt=0, description="a video's duration")
    max_video_frames: int = Field(3000, ge=1, description="a video's frames")
    max_video_pixels: int = Field(
        3840 * 2160, ge=64 * 64, description="width × height of a video's frames (input)"
    )
    max_video_size: int = Field(
        1280,
        ge=16,
        le=16384,
        description="output long side of a video; a larger clip with no size asked is scaled "
        "down to it",
    )
    video_frame_timeout_s: float = Field(
        10,
        gt=0,
        description="a video job may run max(job_timeout_s, its frames × this) before it fails "
        "with `timeout`",
    )
    # Refinements (POST /api/refines): a painting's own network, trained within a time budget,
    # becomes a personal style of the token that asked for it. The crop, batch and painting
    # sizes default to the personal-style recipe's (PERSONAL_CPU, restyle.training.config: a
    # module of declarations only, which loads no training code).
    refine_max_minutes: float = Field(
        15, gt=0, le=1440, description="the longest time budget a refinement may ask for"
    )
    refine_default_minutes: float = Field(
        5, gt=0, le=1440, description="a refinement's budget when it asks for none"
    )
    refine_budgets_minutes: tuple[float, ...] = Field(
        (2.0, 5.0, 10.0, 15.0),
        description="the budgets the web page offers (JSON list); any up to the cap is accepted",
    )
    refine_photos: Path | None = Field(
        None, description="folder of training photos (empty: the 13 bundled photos)"
    )
    refine_crop_size: int = Field(
        PERSONAL_CPU.image_size,
        ge=16,
        le=1024,
        multiple_of=4,
        description="a refinement's training crops, px",
    )
    refine_batch_size: int = Field(
        PERSONAL_CPU.batch_size, ge=1, le=64, description="a refinement's crops per step"
    )
    refine_style_size: int = Field(
        PERSONAL_CPU.style_size,
        ge=64,
        le=2048,
        description="the painting's long side for its Gram matrices",
    )
    refine_preview_size: int = Field(
        256, ge=16, le=1024, description="long side of a refinement's preview photo"
    )
    refine_preview_every_s: float = Field(
        3, gt=0, description="a refinement's preview is refreshed at most this often"
    )
    max_personal_styles: int = Field(8, ge=1, description="personal styles per token")
    personal_style_ttl_s: float = Field(
        7 * 86400,
        gt=0,
        description="a personal style is deleted this long after it was made, unless kept",
    )
    max_jobs_per_client: int = Field(4, ge=1, description="queued or running jobs per client")
    max_queued_jobs: int = Field(1000, ge=1, description="queued jobs in all")
    job_timeout_s: float = Field(1800, gt=0, description="a job running longer fails")
    sync_timeout_s: float = Field(120, gt=0, description="POST /api/stylize waits this long")
    result_ttl_s: float = Field(86400, gt=0, description="finished jobs are deleted after this")
    cleanup_interval_s: float = Field(30, gt=0, description="how often expired jobs are swept")
    heartbeat_s: float = Field(2, gt=0, description="a running job's liveness signal period")
    heartbeat_timeout_s: float = Field(30, gt=0, description="silent this long: worker is lost")
    max_attempts: int = Field(2, ge=1, le=10, description="runs of a job whose worker was lost")
    requeue_grace_s: float = Field(
        30, gt=0, description="a queued job missing from the queue this long is queued again"
    )
    store_retry_s: float = Field(
        30, ge=0, description="a store write is retried (with backoff) through an outage this long"
    )
    orphan_grace_s: float = Field(
        600, gt=0, description="embedded: a job folder without a record this old is removed"
    )
    onnx_cache_max_bytes: int = Field(
        500_000_000, ge=0, description="live mode: the ONNX exports kept on disk, in bytes"
    )
    min_free_bytes: int = Field(
        100_000_000, ge=0, description="embedded: less free space in data_dir is not ready"
    )
    max_batch: int = Field(8, ge=1, le=64, description="queued fast jobs alike run as one batch")
    batch_on_cpu: bool = Field(
        False, description="batch on a CPU too (no faster there, and a batch costs memory)"
    )
    # The HTTP server (uvicorn, configured by `restyle serve`): slow or idle clients must not hold
    # connections for ever, nor crowd out the others.
    limit_concurrency: int = Field(
        200, ge=2, description="open connections or requests at once; beyond: 503 busy"
    )
    keep_alive_timeout_s: int = Field(5, ge=1, description="an idle keep-alive connection closes")
    header_timeout_s: float = Field(
        10, gt=0, description="a request's headers must arrive within this, else the server closes"
    )
    body_timeout_s: float = Field(
        120, gt=0, description="a request's body must arrive within this (408 request_timeout)"
    )

    def job_time_limit(self, frames: int = 0) -> float:
        """Seconds a job may run: `job_timeout_s`, or for a video of `frames` frames
        `frames × video_frame_timeout_s` when that is longer."""
        return max(self.job_timeout_s, frames * self.video_frame_timeout_s)

    def engines(self, *, device: str | None = None) -> Engines:
        """A holder of this server's engines (on `device`, default the settings' own)."""
        setups = {"arbitrary": ArbitrarySetup(network=self.arbitrary_network)}
        return Engines(device=device or self.device or None, setups=setups)
