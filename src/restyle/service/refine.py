"""A refinement job: a painting's own fast network, trained within a time budget, becomes a
personal style of the token that asked for it (see `personal.py`).

The training is the library's (`restyle train fast --init arbitrary`): `RefineStyleTask` starts
from the arbitrary network's pass for the painting and fine-tunes it with Johnson's loss on
the training photos (`refine_photos`, by default the 13 bundled ones), with the zoo's CPU recipe
(encoder and head frozen, content weight 1.5, style weight 1, learning rate 1e-4) and the
server's crop size, batch and style size. `TrainConfig.time_limit_s` ends it at the job's
budget, however fast the machine.

Every progress report updates the job (step, loss, seconds left) and stops it if it was
cancelled; at most every `refine_preview_every_s` the network being trained stylizes a fixed
photo (the first training photo, centre-cropped), which becomes the job's preview. The run's
files live in the job's work folder and are removed afterwards: a cancelled or failed run keeps
nothing. Only a finished run stores a style: its network, its painting and its last preview.

A finished run's network is then checked for artefacts (`restyle.metrics.artefacts`: colour
stripes, a grid, seams) on the first `ARTEFACT_PHOTOS` training photos at `ARTEFACT_SIDE` px,
each photo's own measures raising the limits where the photo itself scores high; the report
(`schemas.ArtefactReport`) becomes the job's `artefacts`. It costs a few seconds on two CPU
cores, and tells the user what a loss curve does not.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from restyle import zoo
from restyle.engines.holder import Engines
from restyle.errors import InvalidParameterError
from restyle.imaging import (
    as_tensor,
    encode_image,
    resize_tensor_to_long_side,
    tensor_to_image,
)
from restyle.metrics import Artefacts, artefacts
from restyle.progress import Progress
from restyle.service.jobs import (
    JobError,
    JobRecord,
    JobStatus,
    JobStopped,
    stop_unless_still_running,
)
from restyle.service.personal import PersonalStyle, quota_full
from restyle.service.schemas import ArtefactReport
from restyle.service.settings import ServiceSettings
from restyle.service.stores.base import Backend
from restyle.training.config import MAX_STEPS, PERSONAL_CPU, TrainConfig
from restyle.training.data import centre_crops, list_images
from restyle.training.fast_task import RefineStyleTask
from restyle.training.loop import train

log = logging.getLogger("restyle.service")

_PROGRESS_EVERY_S = 0.5
_THUMBNAIL_SIDE = 1024
ARTEFACT_PHOTOS = 3  # the first training photos, stylized and measured when a run ends
ARTEFACT_SIDE = 512  # their long side: large enough for 1-px stripes, cheap on a CPU
_MEASURES = tuple(field.name for field in dataclasses.fields(Artefacts))


class _WatchedRefineTask(RefineStyleTask):
    """The library's refinement, keeping the network it trains so previews can be drawn."""

    model: nn.Module | None = None

    def build_model(self) -> nn.Module:
        self.model = super().build_model()
        return self.model


def training_photos(settings: ServiceSettings) -> Path:
    if settings.refine_photos is not None:
        return settings.refine_photos
    from restyle.examples import refine_photos

    return refine_photos()


def refine(
    backend: Backend, record: JobRecord, settings: ServiceSettings, engines: Engines
) -> PersonalStyle:
    """Run a claimed refinement job and store its style; JobStopped when cancelled or when the
    token's quota is full."""
    _ensure_room(backend, record, settings)
    painting = _painting(backend, record)
    photos = training_photos(settings)
    device = engines.device
    sample = _preview_photo(photos, settings.refine_preview_size).to(device)
    source = "" if record.style_upload else str(record.options.style or "")
    task = _WatchedRefineTask(
        painting,
        loss=PERSONAL_CPU.loss(style_size=settings.refine_style_size),
        style_info={"name": source or "upload", "job": record.id},
        frozen=PERSONAL_CPU.frozen,
    )
    config = TrainConfig(
        steps=MAX_STEPS,
        time_limit_s=record.budget_s,
        batch_size=settings.refine_batch_size,
        image_size=settings.refine_crop_size,
        learning_rate=PERSONAL_CPU.learning_rate,
        workers=0,
        log_every=1,
        sample_every=0,
        checkpoint_every=0,
        seed=0,
    )
    reporter = _Reporter(backend, record, settings, task, sample)
    with backend.blobs.work_dir(record.id) as work:
        result = train(task, config, data=photos, out_dir=work, device=device, callback=reporter)
        model = result.model_path.read_bytes()
    stop_unless_still_running(backend.jobs.get(record.id), record)
    preview = reporter.draw() if task.model is not None else None
    report = artefact_check(task.model, photos, device) if task.model is not None else None
    thumbnail = tensor_to_image(painting)
    thumbnail.thumbnail((_THUMBNAIL_SIDE, _THUMBNAIL_SIDE))
    loss = result.losses.get("loss")
    now = time.time()
    style = PersonalStyle(
        id=record.style_id,
        owner_sha256=record.token_sha256,
        name=str(record.options.options.get("name") or ""),
        created_at=now,
        expires_at=now + settings.personal_style_ttl_s,
        model_sha256=hashlib.sha256(model).hexdigest(),
        source=source,
        job_id=record.id,
        steps=result.steps,
        loss=loss if loss is not None and math.isfinite(loss) else None,
    )
    files = {
        "model.safetensors": model,
        "thumbnail.jpg": encode_image(thumbnail, format="JPEG", quality=90),
        "preview.jpg": preview or b"",
    }
    if not backend.personal.put(style, files, most=settings.max_personal_styles):
        raise _quota_stop(backend, record, settings)
    try:
        # Cancelled while the style was being stored?
        current = (
            backend.jobs.update(record.id, artefacts=report.model_dump())
            if report is not None
            else backend.jobs.get(record.id)
        )
        stop_unless_still_running(current, record)
    except JobStopped:
        backend.personal.delete(style.id)
        raise
    return style


def _ensure_room(backend: Backend, record: JobRecord, settings: ServiceSettings) -> None:
    """The token's quota again, on the worker, before training: refinements queued together
    each passed the API's check, and one queued behind a full quota should cost nothing (the
    store checks once more, in the same step as it stores)."""
    if quota_full(_others_owned(backend, record), settings.max_personal_styles):
        raise _quota_stop(backend, record, settings)


def _others_owned(backend: Backend, record: JobRecord) -> int:
    return sum(s.id != record.style_id for s in backend.personal.of_owner(record.token_sha256))


def _quota_stop(backend: Backend, record: JobRecord, settings: ServiceSettings) -> JobStopped:
    most = settings.max_personal_styles
    message = quota_full(max(_others_owned(backend, record), most), most) or ""
    return JobStopped(JobStatus.FAILED, JobError(code="quota_full", message=message))


def _painting(backend: Backend, record: JobRecord) -> torch.Tensor:
    if record.style_upload:
        data = backend.blobs.get(record.id, "style")
        if data is None:
            raise JobStopped(JobStatus.FAILED, JobError(code="input_lost", message="input expired"))
        return as_tensor(data)
    entry = zoo.find(str(record.options.style))
    if entry is None:
        raise InvalidParameterError(f"painting_style: unknown style id {record.options.style!r}")
    return as_tensor(entry.painting_path)


def _preview_photo(photos: Path, side: int) -> torch.Tensor:
    """The first training photo, centre-cropped to a square of `side`: the same every run."""
    files = list_images(photos)
    if not files:
        raise InvalidParameterError("refine_photos: the folder holds no photos")
    return centre_crops(files[:1], side)


def artefact_check(model: nn.Module, photos: Path, device: torch.device) -> ArtefactReport:
    """The network on the first `ARTEFACT_PHOTOS` photos of `photos` at `ARTEFACT_SIDE` px,
    measured (`artefact_report`)."""
    pairs = []
    for path in list_images(photos)[:ARTEFACT_PHOTOS]:
        photo = resize_tensor_to_long_side(as_tensor(path, reduce_to=ARTEFACT_SIDE), ARTEFACT_SIDE)
        pairs.append((photo, _stylized(model, photo.to(device))))
    return artefact_report(pairs)


def artefact_report(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> ArtefactReport:
    """(photo, the network's result on it) pairs, (1, 3, H, W) in [0, 1], as a report: each
    measure's largest value over the results, and a finding for each measure that a result has
    past its limit, the limit raised where that result's photo itself scores high."""
    measured = [(artefacts(result), artefacts(photo)) for photo, result in pairs]
    findings: dict[str, tuple[float, str]] = {}  # measure → (value, words) on the worst photo
    for result, photo in measured:
        for k, words in result.exceeded(photo).items():
            value = getattr(result, k)
            if value > findings.get(k, (-math.inf, ""))[0]:
                findings[k] = (value, words)
    highest = {k: max((getattr(r, k) for r, _ in measured), default=0.0) for k in _MEASURES}
    flagged = [k for k in _MEASURES if k in findings]
    return ArtefactReport(
        **highest,
        flagged=flagged,
        flags=[findings[k][1] for k in flagged],
        checked_photos=len(pairs),
    )


def _stylized(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """The network, in evaluation mode, on (1, 3, H, W) `image`: (1, 3, H, W) float on the CPU."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output: torch.Tensor = model(image)
    finally:
        model.train(was_training)
    return output.float().clamp(0, 1).cpu()


class _Reporter:
    """The training's progress callback: the job's step, loss and time left, its preview,
    cancellation."""

    def __init__(
        self,
        backend: Backend,
        record: JobRecord,
        settings: ServiceSettings,
        task: _WatchedRefineTask,
        sample: torch.Tensor,
    ) -> None:
        self.backend, self.record, self.settings = backend, record, settings
        self.task, self.sample = task, sample
        self.last = -math.inf
        self.last_preview = -math.inf
        self.previews = 0

    def draw(self) -> bytes:
        """The network as it is now, on the preview photo (JPEG)."""
        model = self.task.model
        assert model is not None
        output = _stylized(model, self.sample)
        return encode_image(tensor_to_image(output), format="JPEG", quality=85)

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        final = progress.step >= progress.total
        fields: dict[str, Any] = {}
        if now - self.last_preview >= self.settings.refine_preview_every_s:
            self.last_preview = now
            self.previews += 1
            self.backend.blobs.put(self.record.id, "preview", self.draw())
            fields["preview_version"] = self.previews
        elif not final and now - self.last < _PROGRESS_EVERY_S:
            return
        self.last = now
        budget = max(self.record.budget_s, 1e-6)
        left = 0.0 if final else max(0.0, budget - progress.elapsed)
        loss = progress.loss if math.isfinite(progress.loss) else None
        shown = f", loss {loss:.4g}" if loss is not None else ""
        fields |= {
            "progress": min(1.0, progress.elapsed / budget) if not final else 1.0,
            "message": f"step {progress.step}{shown}, {left:.0f} s left",
            "train_step": progress.step,
            "train_loss": loss,
            "seconds_left": round(left, 1),
        }
        stop_unless_still_running(self.backend.jobs.update(self.record.id, **fields), self.record)
