"""What the GPU jobs share: their staged inputs, the machine, multiply-add counts, baselines."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
INPUTS = ROOT / "zoo-runs" / "gpu-inputs"
EVAL_PHOTOS = ("kodim04", "kodim13", "kodim23")  # as docs/model-zoo.md scores the zoo
TINY = os.environ.get("TINY", "") not in ("", "0")


def check_inputs(*, tiny: bool = TINY) -> dict[str, Any]:
    """The staged inputs' manifest; exits if there are none or they are the other mode's."""
    path = INPUTS / "MANIFEST.json"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run python model-zoo/gpu/stage.py and carry it")
    manifest: dict[str, Any] = json.loads(path.read_text("utf-8"))
    if bool(manifest.get("tiny")) != tiny:
        wanted = "--tiny" if tiny else "without --tiny"
        raise SystemExit(f"{INPUTS} was staged for the other mode: run stage.py {wanted}")
    return manifest


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def machine() -> dict[str, Any]:
    facts: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    if torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name(0)
    return facts


def eval_photos(size: int, names: tuple[str, ...] | list[str]) -> dict[str, torch.Tensor]:
    """The staged evaluation photos (never trained on) at `size` px on the long side."""
    from restyle.imaging import as_tensor, resize_tensor_to_long_side

    folder = INPUTS / "eval" / "photos"
    present = [n for n in names if (folder / f"{n}.jpg").is_file()]
    if not present:
        raise SystemExit(f"none of the evaluation photos {list(names)} is staged in {folder}")
    return {n: resize_tensor_to_long_side(as_tensor(folder / f"{n}.jpg"), size) for n in present}


def at_short_side(painting: torch.Tensor, size: int) -> torch.Tensor:
    """A painting with its short side at `size` (long side capped at 4 × size), as the
    arbitrary engine analyses one."""
    from restyle.imaging import resize_tensor_to_long_side

    height, width = painting.shape[-2:]
    long_side = round(size * max(height, width) / min(height, width))
    return resize_tensor_to_long_side(painting.float(), min(long_side, 4 * size))


def conv_macs(net: nn.Module, *, side: int = 512, channels_in: int = 3) -> int:
    """Multiply-adds of the convolutions in one forward pass of a `side`² image (batch 1);
    everything else such a network does is a few per cent of it. Counted at 128 px and scaled
    by the area, which is exact for convolutions (and cheap on a CPU)."""
    total = 0

    def count(module: nn.Module, _: Any, output: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.Conv2d)
        kh, kw = module.kernel_size
        per_output = module.in_channels // module.groups * kh * kw
        total += output[0].numel() * per_output

    probe = 128
    on = next(net.parameters()).device
    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            net(torch.rand(1, channels_in, probe, probe, device=on))
    finally:
        for hook in hooks:
            hook.remove()
    return total * side * side // (probe * probe)


def microast_teacher(on: torch.device) -> tuple[Any, str]:
    """The shipped MicroAST (the arbitrary engine's network) and its sha256."""
    from restyle import zoo
    from restyle.models.checkpoint import load_microast

    path, record = zoo.verified_microast_model(), zoo.microast_info()
    if path is None or record is None:
        raise SystemExit("the shipped MicroAST weights are missing from src/restyle/zoo")
    model, _ = load_microast(path, device=on)
    return model, str(record["sha256"])


def arbitrary_pass(style_id: str, on: torch.device) -> nn.Module | None:
    """The zoo style's arbitrary variant: MicroAST with the painting's recorded signals folded
    in (what a style without a trained network runs); None if the registry has no signals."""
    import dataclasses

    from restyle import zoo
    from restyle.models.microast import StyleSignals

    entry = zoo.find(style_id)
    variant = entry.variants.get("arbitrary") if entry is not None else None
    if variant is None or variant.signals is None:
        return None
    model, _ = microast_teacher(torch.device("cpu"))
    names = [f.name for f in dataclasses.fields(StyleSignals)]
    signals = StyleSignals(
        *(torch.tensor(variant.signals[n], dtype=torch.float32).view(1, -1, 1, 1) for n in names)
    )
    styled: nn.Module = model.styled(signals)
    return styled.to(on).eval()


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    # The jobs' first check: the inputs are staged for this mode, and what torch sees.
    staged = check_inputs()
    say(f"inputs: {len(staged['files'])} staged files; {json.dumps(machine())}")
