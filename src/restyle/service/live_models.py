"""ONNX models for the web app's live mode: the browser runs them on camera frames itself.

A zoo style gives its `lite` network where it has one, else its shipped network (the refined
MicroAST); a personal style its own network (a refined MicroAST too); any painting gives the
arbitrary engine's network for it. Both come from the
serving process's engines (`Engines`), which load each network once and export it once
(cached on disk by the weights' digest). The cache holds at most `onnx_cache_max_bytes`: each
export served is marked used, and the least recently used ones go first.

A painting is decoded here, in the API process (the network is made for the request that
waits for it): one painting at a time, so that concurrent requests cannot each hold a large
decoded image.
"""

from __future__ import annotations

import threading
from pathlib import Path

from restyle import zoo
from restyle.engines.holder import Engines
from restyle.errors import InvalidParameterError
from restyle.imaging import ImageLimits, as_tensor
from restyle.onnx_export import prune_onnx_cache

_LIVE_VARIANT = "lite"  # small enough for a phone's browser at video rate
_PAINTINGS_AT_ONCE = threading.BoundedSemaphore(1)


def zoo_style_onnx(engines: Engines, style_id: str, *, cache_bytes: int) -> Path:
    """The ONNX export of a zoo style's lite network, else its default one."""
    entry = zoo.find(style_id)
    if entry is None:
        raise InvalidParameterError(f"style: no style {style_id!r}")
    name = _LIVE_VARIANT if _LIVE_VARIANT in entry.variants else entry.default_variant.name
    fast = engines.get("fast")
    path: Path = fast.stylizer(f"{style_id}:{name}").onnx_path()  # type: ignore[attr-defined]
    prune_onnx_cache(cache_bytes, used=path)
    return path


def network_onnx(engines: Engines, model: Path, *, cache_bytes: int) -> Path:
    """The ONNX export of a trained network's file (a personal style's)."""
    fast = engines.get("fast")
    path: Path = fast.stylizer(model).onnx_path()  # type: ignore[attr-defined]
    prune_onnx_cache(cache_bytes, used=path)
    return path


def painting_onnx(
    engines: Engines, painting: bytes, *, limits: ImageLimits, cache_bytes: int
) -> Path:
    """The ONNX export of the arbitrary engine's network for `painting` (image bytes)."""
    arbitrary = engines.get("arbitrary")
    with _PAINTINGS_AT_ONCE:
        stylizer = arbitrary.stylizer([as_tensor(painting, limits=limits)])  # type: ignore[attr-defined]
    path: Path = stylizer.onnx_path()
    prune_onnx_cache(cache_bytes, used=path)
    return path
