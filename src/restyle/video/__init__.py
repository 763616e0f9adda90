"""`restyle.video`: stylize a clip end to end, keeping its sound, rate and rotation.

>>> from restyle.video import stylize_video
>>> stylize_video("clip.mp4", "out.mp4", "starry-night", size=640)

The loop is in `pipeline.py`; see it for how frames stream from decoder to encoder. This package
imports nothing heavy itself: its names are loaded on first use, so the declarations
(`restyle.video.config`: the options, the file signatures) can be read without PyAV, OpenCV or
torch, e.g. by the CLI's parser, the docs' tables and the HTTP API until a video arrives.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from restyle.video.config import VideoOptions, looks_like_video
    from restyle.video.pipeline import VideoSummary, frame_size, stylize_video

_LAZY = {
    "VideoOptions": "restyle.video.config",
    "VideoSummary": "restyle.video.pipeline",
    "frame_size": "restyle.video.pipeline",
    "looks_like_video": "restyle.video.config",
    "stylize_video": "restyle.video.pipeline",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'restyle.video' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "VideoOptions",
    "VideoSummary",
    "frame_size",
    "looks_like_video",
    "stylize_video",
]
