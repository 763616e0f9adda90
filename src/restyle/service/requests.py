"""Reading a request: the stylization form (its photo or video, its painting, its options), the
live mode's painting, a refinement's form.

Everything a client sends is checked before a job exists: the body and its files while they
stream, each image's header and a video's container (`uploads`), every option against the
engines' declarations and the server's limits (`form`), and from the photo's dimensions the
job's budget (`budgets`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from restyle import zoo
from restyle.service.budgets import budgeted, budgeted_video
from restyle.service.errors import ApiError
from restyle.service.form import FORM_FIELDS, parse_options
from restyle.service.jobs import STYLE_ID_PATTERN, JobOptions
from restyle.service.settings import ServiceSettings
from restyle.service.uploads import read_form, read_image, read_video
from restyle.video.config import SIGNATURE_BYTES, has_video_signature


@dataclass(frozen=True)
class StylizeRequest:
    options: JobOptions
    content: bytes | Path
    """The photo's bytes, or the path of a video's file (`discard` removes it, unless a backend
    has taken it into its store)."""
    style_image: bytes | None
    response: str  # "image" or "json" (base64), for POST /api/stylize
    frames: int = 0
    """A video's frames, as counted from its container."""
    content_hw: tuple[int, int] = (0, 0)
    """The photo's or the clip's frames' height and width, px."""

    @property
    def is_video(self) -> bool:
        return isinstance(self.content, Path)

    def discard(self) -> None:
        """Remove the video's file, if it is still there (a job not admitted)."""
        if isinstance(self.content, Path):
            self.content.unlink(missing_ok=True)


async def read_stylize_request(
    request: Request, settings: ServiceSettings, *, scratch: Path | None = None
) -> StylizeRequest:
    """The request's form, checked. A video is accepted only with `scratch`, the folder its
    file is copied to (the backend's `scratch_dir`); without one it is a 400."""
    limits = {
        "content": (settings.max_upload_bytes, settings.max_video_bytes),
        "style_image": (settings.max_style_upload_bytes, settings.max_style_upload_bytes),
    }
    form = await read_form(request, max_files=2, max_fields=len(FORM_FIELDS), limits=limits)
    try:
        return await _parse(form, settings, scratch)
    finally:
        await form.close()


async def _parse(form: FormData, settings: ServiceSettings, scratch: Path | None) -> StylizeRequest:
    unknown = set(form.keys()) - FORM_FIELDS
    if unknown:
        raise ApiError(
            400,
            "invalid_parameter",
            f"unknown field(s) {sorted(unknown)}; expected {sorted(FORM_FIELDS)}",
        )
    content_file = form.get("content")
    if not isinstance(content_file, UploadFile):
        raise ApiError(400, "missing_content", "field 'content': the photo file is required")
    style_file = form.get("style_image")
    if style_file is not None and not isinstance(style_file, UploadFile):
        raise ApiError(400, "invalid_parameter", "field 'style_image' must be a file")
    values: dict[str, str] = {
        k: v for k, v in form.items() if isinstance(v, str) and k not in ("response", "content")
    }
    for key, value in values.items():
        if value.strip() == "":
            raise ApiError(400, "invalid_parameter", f"field {key!r} is empty")
    response = str(form.get("response") or "image")
    if response not in ("image", "json"):
        raise ApiError(400, "invalid_parameter", f"response: 'image' or 'json', got {response!r}")
    head = await content_file.read(SIGNATURE_BYTES)
    await content_file.seek(0)
    video = has_video_signature(head)
    if video and scratch is None:
        raise ApiError(
            400,
            "invalid_parameter",
            "content: a video is stylized as a job; send it to POST /api/jobs",
        )
    options = parse_options(values, settings, has_style_image=style_file is not None, video=video)
    content: bytes | Path
    frames = 0
    if video:
        assert scratch is not None
        content, info = await read_video(content_file, settings, scratch)
        frames, content_hw = info.frames, (info.height, info.width)
    else:
        content, photo = await read_image(
            content_file, "content", settings.max_upload_bytes, settings
        )
        options = budgeted(options, photo, settings)
        content_hw = (photo.height, photo.width)
    try:
        if video:
            options = budgeted_video(options, info, settings)
        style = None
        if style_file is not None:
            style, _ = await read_image(
                style_file, "style_image", settings.max_style_upload_bytes, settings
            )
    except BaseException:
        if isinstance(content, Path):
            content.unlink(missing_ok=True)
        raise
    return StylizeRequest(
        options=options,
        content=content,
        style_image=style,
        response=response,
        frames=frames,
        content_hw=content_hw,
    )


async def read_painting(request: Request, settings: ServiceSettings) -> bytes:
    """A form with one file, `style_image` (the live mode's painting), checked like any upload."""
    limits = {"style_image": (settings.max_style_upload_bytes,) * 2}
    form = await read_form(request, max_files=1, max_fields=1, limits=limits)
    try:
        upload = form.get("style_image")
        if not isinstance(upload, UploadFile):
            raise ApiError(400, "missing_style_image", "field 'style_image': a painting file")
        data, _ = await read_image(upload, "style_image", settings.max_style_upload_bytes, settings)
        return data
    finally:
        await form.close()


REFINE_FIELDS = frozenset({"painting", "painting_style", "minutes", "name"})
MAX_NAME_CHARS = 80


@dataclass(frozen=True)
class RefineRequest:
    """POST /api/refines, checked: a painting (uploaded, or a zoo style's), a budget, a name."""

    painting: bytes | None
    painting_style: str | None
    minutes: float
    name: str


async def read_refine_request(request: Request, settings: ServiceSettings) -> RefineRequest:
    """The refinement's form: `painting` (a file) or `painting_style` (a zoo style id), and
    optionally `minutes` (the time budget, at most `refine_max_minutes`) and `name`."""
    limits = {"painting": (settings.max_style_upload_bytes,) * 2}
    form = await read_form(request, max_files=1, max_fields=len(REFINE_FIELDS), limits=limits)
    try:
        unknown = set(form.keys()) - REFINE_FIELDS
        if unknown:
            raise ApiError(
                400,
                "invalid_parameter",
                f"unknown field(s) {sorted(unknown)}; expected {sorted(REFINE_FIELDS)}",
            )
        upload = form.get("painting")
        style = form.get("painting_style")
        if upload is not None and not isinstance(upload, UploadFile):
            raise ApiError(400, "invalid_parameter", "field 'painting' must be a file")
        if style is not None and not isinstance(style, str):
            raise ApiError(400, "invalid_parameter", "field 'painting_style' must be a style id")
        if (upload is None) == (style is None):
            raise ApiError(
                400,
                "invalid_style",
                "give exactly one of 'painting' (a file) or 'painting_style' (a style id from "
                "/api/styles)",
            )
        if style is not None:
            entry = zoo.find(style) if re.fullmatch(STYLE_ID_PATTERN, style) else None
            if entry is None or ":" in style:
                known = ", ".join(e.id for e in zoo.entries())
                raise ApiError(
                    400, "unknown_style", f"painting_style: no style {style!r}; known: {known}"
                )
        painting = None
        if isinstance(upload, UploadFile):
            painting, _ = await read_image(
                upload, "painting", settings.max_style_upload_bytes, settings
            )
        return RefineRequest(
            painting=painting,
            painting_style=style,
            minutes=_minutes(form.get("minutes"), settings),
            name=style_name(form.get("name")),
        )
    finally:
        await form.close()


def _minutes(value: Any, settings: ServiceSettings) -> float:
    if value is None:
        return min(settings.refine_default_minutes, settings.refine_max_minutes)
    try:
        minutes = float(value) if isinstance(value, str) else math.nan
    except ValueError:
        minutes = math.nan
    if not math.isfinite(minutes) or minutes <= 0:
        raise ApiError(400, "invalid_parameter", f"minutes: a number above 0, got {value!r}")
    if minutes > settings.refine_max_minutes:
        raise ApiError(
            400,
            "over_budget",
            f"minutes: {minutes:g} is over this server's limit of "
            f"{settings.refine_max_minutes:g} (RESTYLE_REFINE_MAX_MINUTES)",
        )
    return minutes


def style_name(value: Any) -> str:
    """A personal style's name as given (a refinement's `name`, a rename): whitespace runs
    become one space; printable text of at most MAX_NAME_CHARS, else a 400."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApiError(400, "invalid_parameter", "field 'name' must be text")
    name = " ".join(value.split())
    if len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise ApiError(
            400, "invalid_parameter", f"name: printable text, at most {MAX_NAME_CHARS} characters"
        )
    return name
