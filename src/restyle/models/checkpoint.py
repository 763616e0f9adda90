"""Transform-network checkpoints: safetensors weights plus the config and facts needed to use them.

A checkpoint is one `.safetensors` file. Its header metadata (strings only, by the format's
rules) carries `format` and `format_version`, the network's config as JSON and free-form JSON
`info` (style, training command, losses). Loading never unpickles anything, so a file from an
untrusted user can at worst fail to load.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from restyle.errors import WeightsError
from restyle.models.transform_net import TransformNet, TransformNetConfig

FORMAT = "restyle.transform_net"
FORMAT_VERSION = 1


def save_transform_net(
    path: str | os.PathLike[str],
    net: TransformNet,
    *,
    info: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write `net` to `path` atomically; `dtype=torch.float16` halves the file for shipping."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in net.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "config": json.dumps(net.config.to_dict()),
        "info": json.dumps(info or {}),
    }
    partial = path.with_name(f".{path.name}.partial")
    save_file(tensors, str(partial), metadata=metadata)
    os.replace(partial, path)
    return path


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's config and info without loading its weights."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = handle.metadata() or {}
    except (OSError, SafetensorError, ValueError) as exc:
        raise WeightsError(
            f"checkpoint {str(path)!r}: not a readable safetensors file ({exc})"
        ) from exc
    if raw.get("format") != FORMAT:
        raise WeightsError(
            f"checkpoint {str(path)!r}: not a Restyle transform network "
            f"(format {raw.get('format')!r})"
        )
    version = raw.get("format_version", "")
    if not version.isdigit() or int(version) > FORMAT_VERSION:
        raise WeightsError(
            f"checkpoint {str(path)!r}: format version {version!r} is newer than this Restyle "
            f"reads ({FORMAT_VERSION}); upgrade Restyle"
        )
    try:
        return {"config": json.loads(raw["config"]), "info": json.loads(raw.get("info", "{}"))}
    except (KeyError, json.JSONDecodeError) as exc:
        raise WeightsError(f"checkpoint {str(path)!r}: damaged metadata ({exc})") from exc


def load_transform_net(
    path: str | os.PathLike[str], *, device: torch.device | str = "cpu"
) -> tuple[TransformNet, dict[str, Any]]:
    """The network stored at `path` (float32, eval mode, on `device`) and its info dict."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint {str(path)!r}: no such file")
    metadata = read_metadata(path)
    try:
        config = TransformNetConfig.from_dict(metadata["config"])
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"checkpoint {str(path)!r}: bad network config ({exc})") from exc
    net = TransformNet(config)
    try:
        with safe_open(str(path), framework="pt") as handle:
            state = {k: handle.get_tensor(k).float() for k in handle.keys()}  # noqa: SIM118
        net.load_state_dict(state, strict=True)
    except (OSError, SafetensorError, RuntimeError, ValueError) as exc:
        raise WeightsError(f"checkpoint {str(path)!r}: weights do not load ({exc})") from exc
    return net.eval().requires_grad_(False).to(device), metadata["info"]


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
