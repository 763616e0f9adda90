"""Network checkpoints: safetensors weights plus the config and facts needed to use them.

Four kinds: the fast engine's networks, a `TransformNet` ("restyle.transform_net") or one
painting's refined MicroAST (`StyledMicroAST`, "restyle.microast_style"), and the arbitrary
engine's networks, `MetaNet` ("restyle.meta_net") and `MicroAST` ("restyle.microast"). A
checkpoint is
one `.safetensors` file. Its header metadata (strings only, by the format's rules) carries
`format` and `format_version`, the network's config as JSON and free-form JSON `info` (style,
training command, losses). Loading never unpickles anything, so a file from an untrusted user
can at worst fail to load.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from restyle.errors import WeightsError
from restyle.models.meta_net import MetaNet, MetaNetConfig
from restyle.models.microast import MicroAST, StyledMicroAST
from restyle.models.transform_net import TransformNet, TransformNetConfig

FORMAT = "restyle.transform_net"
META_FORMAT = "restyle.meta_net"
MICROAST_FORMAT = "restyle.microast"
STYLED_MICROAST_FORMAT = "restyle.microast_style"
FORMAT_VERSION = 1
_Module = TypeVar("_Module", bound=torch.nn.Module)
_KIND = {
    FORMAT: "transform network",
    META_FORMAT: "MetaNet (arbitrary engine)",
    MICROAST_FORMAT: "MicroAST (arbitrary engine)",
    STYLED_MICROAST_FORMAT: "refined MicroAST style",
}
# What the fast engine runs: one painting's feed-forward network, of either design.
FAST_FORMATS = (FORMAT, STYLED_MICROAST_FORMAT)


def save_transform_net(
    path: str | os.PathLike[str],
    net: TransformNet,
    *,
    info: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write `net` to `path` atomically; `dtype=torch.float16` halves the file for shipping."""
    return _save(path, net, net.config.to_dict(), FORMAT, info, dtype)


def save_meta_net(
    path: str | os.PathLike[str],
    net: MetaNet,
    *,
    info: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write a MetaNet (with its shared layers) to `path` atomically."""
    return _save(path, net, net.config.to_dict(), META_FORMAT, info, dtype)


def save_microast(
    path: str | os.PathLike[str], net: MicroAST, *, info: dict[str, Any] | None = None
) -> Path:
    """Write a MicroAST network (float32: 1.9 MB) to `path` atomically."""
    return _save(path, net, {}, MICROAST_FORMAT, info, torch.float32)


def save_styled_microast(
    path: str | os.PathLike[str],
    net: StyledMicroAST,
    *,
    info: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write one painting's refined MicroAST to `path` atomically (float16 halves it)."""
    return _save(path, net, {"network": "microast"}, STYLED_MICROAST_FORMAT, info, dtype)


def save_fast_network(
    path: str | os.PathLike[str],
    net: torch.nn.Module,
    *,
    info: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write a fast-engine network of either kind (what `load_fast_network` reads back)."""
    if isinstance(net, StyledMicroAST):
        return save_styled_microast(path, net, info=info, dtype=dtype)
    if isinstance(net, TransformNet):
        return save_transform_net(path, net, info=info, dtype=dtype)
    raise TypeError(f"not a fast-engine network: {type(net).__name__}")


def _save(
    path: str | os.PathLike[str],
    net: torch.nn.Module,
    config: dict[str, Any],
    kind: str,
    info: dict[str, Any] | None,
    dtype: torch.dtype,
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in net.state_dict().items()}
    metadata = {
        "format": kind,
        "format_version": str(FORMAT_VERSION),
        "config": json.dumps(config),
        "info": json.dumps(info or {}),
    }
    partial = path.with_name(f".{path.name}.partial")
    save_file(tensors, str(partial), metadata=metadata)
    os.replace(partial, path)
    return path


def read_metadata(
    path: str | os.PathLike[str], *, kind: str | tuple[str, ...] = FORMAT
) -> dict[str, Any]:
    """The checkpoint's format, config and info without loading its weights.

    `kind` is the format expected, or a tuple of the formats accepted.
    """
    kinds = (kind,) if isinstance(kind, str) else kind
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = handle.metadata() or {}
    except (OSError, SafetensorError, ValueError) as exc:
        raise WeightsError(
            f"checkpoint {str(path)!r}: not a readable safetensors file ({exc})"
        ) from exc
    if raw.get("format") not in kinds:
        wanted = " or ".join(_KIND[k] for k in kinds)
        raise WeightsError(
            f"checkpoint {str(path)!r}: not a Restyle {wanted} (format {raw.get('format')!r})"
        )
    version = raw.get("format_version", "")
    if not version.isdigit() or int(version) > FORMAT_VERSION:
        raise WeightsError(
            f"checkpoint {str(path)!r}: format version {version!r} is newer than this Restyle "
            f"reads ({FORMAT_VERSION}); upgrade Restyle"
        )
    try:
        return {
            "format": raw["format"],
            "config": json.loads(raw["config"]),
            "info": json.loads(raw.get("info", "{}")),
        }
    except (KeyError, json.JSONDecodeError) as exc:
        raise WeightsError(f"checkpoint {str(path)!r}: damaged metadata ({exc})") from exc


def load_transform_net(
    path: str | os.PathLike[str], *, device: torch.device | str = "cpu"
) -> tuple[TransformNet, dict[str, Any]]:
    """The network stored at `path` (float32, eval mode, on `device`) and its info dict."""
    metadata = _metadata_of_file(path, FORMAT)
    try:
        config = TransformNetConfig.from_dict(metadata["config"])
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"checkpoint {str(path)!r}: bad network config ({exc})") from exc
    net = _load_weights(path, TransformNet(config))
    return net.eval().requires_grad_(False).to(device), metadata["info"]


def load_fast_network(
    path: str | os.PathLike[str], *, device: torch.device | str = "cpu"
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The fast engine's network at `path` (a `TransformNet` or a refined `StyledMicroAST`;
    float32, eval mode, on `device`) and its info dict."""
    metadata = _metadata_of_file(path, FAST_FORMATS)
    if metadata["format"] == FORMAT:
        return load_transform_net(path, device=device)
    net = _load_weights(path, StyledMicroAST.blank())
    return net.eval().requires_grad_(False).to(device), metadata["info"]


def load_meta_net(
    path: str | os.PathLike[str], *, device: torch.device | str = "cpu"
) -> tuple[MetaNet, dict[str, Any]]:
    """The MetaNet stored at `path` (float32, eval mode, on `device`) and its info dict."""
    metadata = _metadata_of_file(path, META_FORMAT)
    try:
        config = MetaNetConfig.from_dict(metadata["config"])
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"checkpoint {str(path)!r}: bad MetaNet config ({exc})") from exc
    net = _load_weights(path, MetaNet(config))
    return net.eval().requires_grad_(False).to(device), metadata["info"]


def load_microast(
    path: str | os.PathLike[str], *, device: torch.device | str = "cpu"
) -> tuple[MicroAST, dict[str, Any]]:
    """The MicroAST network stored at `path` (float32, eval mode, on `device`) and its info."""
    metadata = _metadata_of_file(path, MICROAST_FORMAT)
    net = _load_weights(path, MicroAST())
    return net.eval().requires_grad_(False).to(device), metadata["info"]


def _metadata_of_file(path: str | os.PathLike[str], kind: str | tuple[str, ...]) -> dict[str, Any]:
    if not Path(path).is_file():
        raise WeightsError(f"checkpoint {str(path)!r}: no such file")
    return read_metadata(path, kind=kind)


def _load_weights(path: str | os.PathLike[str], net: _Module) -> _Module:
    try:
        with safe_open(str(path), framework="pt") as handle:
            state = {k: handle.get_tensor(k).float() for k in handle.keys()}  # noqa: SIM118
        net.load_state_dict(state, strict=True)
    except (OSError, SafetensorError, RuntimeError, ValueError) as exc:
        raise WeightsError(f"checkpoint {str(path)!r}: weights do not load ({exc})") from exc
    return net


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
