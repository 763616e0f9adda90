"""ONNX models for the web app's live mode: the browser runs them on camera frames itself.

A zoo style gives its `lite` network where it has one, else its shipped network (the refined
MicroAST); a personal style its own network (a refined MicroAST too): the trained-network
engine's (`trained_engine()`). Any painting gives the network of the feed-forward painting
engine (`painting_engine(feed_forward=True)`, the arbitrary engine) for it. Both come from the
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
from restyle.engines.registry import painting_engine, trained_engine
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
    path = engines.feed_forward(trained_engine().name).live_model([f"{style_id}:{name}"])
    prune_onnx_cache(cache_bytes, used=path)
    return path


def network_onnx(engines: Engines, model: Path, *, cache_bytes: int) -> Path:
    """The ONNX export of a trained network's file (a personal style's)."""
    path = engines.feed_forward(trained_engine().name).live_model([model])
    prune_onnx_cache(cache_bytes, used=path)
    return path


def painting_onnx(
    engines: Engines, painting: bytes, *, limits: ImageLimits, cache_bytes: int
) -> Path:
    """The ONNX export of the feed-forward painting engine's network for `painting` (image
    bytes)."""
    spec = painting_engine(feed_forward=True)
    if spec is None:  # the route asks first (a 400); a caller that did not learns it here
        raise InvalidParameterError("style_image: no feed-forward painting engine is installed")
    engine = engines.feed_forward(spec.name)
    with _PAINTINGS_AT_ONCE:
        path = engine.live_model([as_tensor(painting, limits=limits)])
    prune_onnx_cache(cache_bytes, used=path)
    return path
