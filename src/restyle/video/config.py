"""The options of a video run, declared once (`restyle.options.option`).

They sit beside the engine's own options: `stylize_video(..., temporal_strength=0.5, size=640)`
splits its keywords between these and the engine's. Kept free of PyAV and OpenCV imports, so
the CLI and the docs' tables can read the declarations without loading either.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from restyle.options import check_options, option

Codec = Literal["auto", "h264", "vp9"]

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")
"""File name endings taken as video inputs; other files are recognised by their first bytes."""
OUTPUT_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm")
"""Containers Restyle writes: H.264 or VP9 video, the input's audio packets as they were (its
sound re-encoded where the container cannot hold their codec: Opus in WebM, AAC elsewhere)."""

_IMAGE_BRANDS = {b"heic", b"heix", b"mif1", b"msf1", b"avif", b"avis"}  # ISO-BMFF stills
_EBML = b"\x1a\x45\xdf\xa3"  # Matroska and WebM
SIGNATURE_BYTES = 12
"""How many first bytes of a file `has_video_signature` reads."""


def has_video_signature(head: bytes) -> bool:
    """Whether a file's first `SIGNATURE_BYTES` bytes are those of a video container: MP4, MOV
    and 3GP (but not the HEIF and AVIF stills that share their box), Matroska and WebM, AVI."""
    if head[4:8] == b"ftyp":
        return head[8:12] not in _IMAGE_BRANDS
    return head.startswith(_EBML) or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")


def looks_like_video(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a video file, by its name or, failing that, its first bytes."""
    path = Path(path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return True
    try:
        with path.open("rb") as f:
            head = f.read(SIGNATURE_BYTES)
    except OSError:
        return False
    return has_video_signature(head)


@dataclass(frozen=True)
class VideoOptions:
    """How a clip is read, stabilised and written (the engine's options are separate).

    - `temporal_strength`: each output frame is blended with the previous output frame warped
      by the motion of the input (DIS optical flow), by this weight, wherever that motion is
      reliable (forward and backward flows agree, the pixel was visible, no scene cut). The
      blend is recursive, so a pixel's memory fades as strength^n over n frames.
    - `codec`: "auto" writes VP9 into .webm and H.264 into anything else.
    - `crf`: the encoder's constant rate factor (lower: better and larger); none picks 18
      for H.264 (near transparent) and 32 for VP9.
    - `max_frames`: stylize only the first frames (and the audio up to their end); gatys
      needs it, since every frame is a full optimisation.
    - `frame_batch`: frames per forward pass; fewer are run at large sizes so a batch stays
      within `BATCH_PIXELS`.
    """

    temporal_strength: float = option(
        0.7,
        label="Flicker reduction",
        help="video: how much each frame keeps of the previous stylized frame, moved with the "
        "motion, where the motion is reliable (0: each frame on its own; higher: less flicker)",
        minimum=0.0,
        maximum=0.95,
        public=True,
    )
    codec: Codec = option(
        "auto", label="Video codec", help="video codec (auto: vp9 for .webm, h264 otherwise)"
    )
    crf: int | None = option(
        None,
        label="Video quality (CRF)",
        help="video encoder quality, lower is better (none: 18 for h264, 32 for vp9)",
        minimum=0,
        maximum=63,
    )
    max_frames: int = option(
        0,
        label="Frames to stylize",
        help="video: stylize the first N frames only (0: all; gatys needs it)",
        minimum=0,
    )
    frame_batch: int = option(
        8,
        label="Frames per batch",
        help="video: frames per forward pass (fewer at large sizes)",
        minimum=1,
        maximum=64,
    )

    def __post_init__(self) -> None:
        check_options(self)


BATCH_PIXELS = 4_000_000
"""Pixels of one forward pass of a video batch: two 1080p frames, eight at 640×360. A 2 MP
frame through a `standard` network peaks near 1.2 GB on the CPU, so this bounds a batch's
memory whatever the clip's resolution."""
