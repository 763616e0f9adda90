"""ONNX models for the web app's live mode: the browser runs them on camera frames itself.

A zoo style gives its `lite` network where it has one, else its shipped network (the refined
MicroAST); any painting gives the arbitrary engine's network for it. Both come from the
serving process's engines (`Engines`), which load each network once and export it once
(cached on disk by the weights' digest).
"""

from __future__ import annotations

from pathlib import Path

from restyle import zoo
from restyle.engines.holder import Engines
from restyle.errors import InvalidParameterError
from restyle.imaging import ImageLimits, as_tensor

_LIVE_VARIANT = "lite"  # small enough for a phone's browser at video rate


def zoo_style_onnx(engines: Engines, style_id: str) -> Path:
    """The ONNX export of a zoo style's lite network, else its default one."""
    entry = zoo.find(style_id)
    if entry is None:
        raise InvalidParameterError(f"style: no style {style_id!r}")
    name = _LIVE_VARIANT if _LIVE_VARIANT in entry.variants else entry.default_variant.name
    fast = engines.get("fast")
    return fast.stylizer(f"{style_id}:{name}").onnx_path()  # type: ignore[attr-defined, no-any-return]


def painting_onnx(engines: Engines, painting: bytes, *, limits: ImageLimits) -> Path:
    """The ONNX export of the arbitrary engine's network for `painting` (image bytes)."""
    arbitrary = engines.get("arbitrary")
    stylizer = arbitrary.stylizer([as_tensor(painting, limits=limits)])  # type: ignore[attr-defined]
    return stylizer.onnx_path()  # type: ignore[no-any-return]
