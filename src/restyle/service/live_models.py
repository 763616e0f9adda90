"""ONNX models for the web app's live mode: the browser runs them on camera frames itself.

A zoo style gives its `lite` network; any painting gives the network the MetaNet writes for it.
Exports are cached on disk by content digest, so each is built once per server.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from restyle import zoo
from restyle.errors import InvalidParameterError
from restyle.onnx_export import export_onnx

_LIVE_VARIANT = "lite"  # small enough for a phone's browser at video rate
_lock = threading.Lock()  # one export at a time: they are CPU-bound and short


def zoo_style_onnx(style_id: str, cache: Path) -> Path:
    """The ONNX export of a zoo style's lite network (or its smallest one)."""
    from restyle.models.checkpoint import load_transform_net

    entry = zoo.find(style_id)
    if entry is None:
        raise InvalidParameterError(f"style: no style {style_id!r}")
    name = _LIVE_VARIANT if _LIVE_VARIANT in entry.variants else entry.default_variant.name
    variant = entry.variant(name)
    path = cache / f"zoo-{variant.sha256[:32]}.onnx"
    with _lock:
        if not path.is_file():
            from restyle.engines.fast import resolve_model

            net, _ = load_transform_net(resolve_model(f"{style_id}:{name}"))
            export_onnx(net, path)
    return path


def painting_onnx(painting: bytes, cache: Path, *, device: str | None = None) -> Path:
    """The ONNX export of the network the shipped MetaNet writes for `painting` (image bytes)."""
    from restyle.api import _arbitrary_stylizer, as_tensor
    from restyle.engines.arbitrary_config import ArbitraryConfig

    if zoo.arbitrary_model() is None:
        raise InvalidParameterError("live mode with a painting needs the MetaNet; none installed")
    stylizer = _arbitrary_stylizer(ArbitraryConfig(), device or None)
    key = hashlib.sha256(painting).hexdigest()
    path = cache / f"painting-{stylizer.model_sha256[:16]}-{key[:32]}.onnx"
    with _lock:
        if not path.is_file():
            _, net = stylizer.network(as_tensor(painting))
            export_onnx(net.cpu(), path)
    return path
