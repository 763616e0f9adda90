"""Speed of the arbitrary engine's networks: the style pass, then milliseconds per video frame.

Both networks of the engine side by side, MicroAST (the default) and the MetaNet. What is
measured, in one process on one machine:
- style pass: from a painting tensor (decoding excluded), cache cleared before every call, to
  the painting's network: MicroAST's style encoder and modulator then the folding of the
  signals into the weights; VGG19 statistics, the MetaNet and the generated network;
- per frame: `ArbitraryEngine.stylizer([painting]).stylize(frame)` for a (1, 3, H, W) float frame
  in memory at 640×480 and 1920×1080, for each runtime available on the device (CPU: onnxruntime and
  PyTorch float32; CUDA: PyTorch float16), next to the fast engine's shipped zoo network for
  the same painting (`starry-night`, refined from MicroAST) run the same way (the ratio says
  what generating the weights costs per frame: nothing, once built).

Method: `--warmup` untimed calls per variant, then `--repeats` rounds that call every variant
once in turn (a noisy machine's slow spells fall on all alike); the median is reported, with
frames per second. Speed does not depend on the weights: without `--model` and without a
shipped MetaNet, a freshly initialised one of the default size is used.

    python benchmarks/arbitrary_speed.py --device cpu --json docs/benchmarks-arbitrary-cpu.json
    python benchmarks/arbitrary_speed.py --device cuda --json docs/benchmarks-arbitrary-gpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from machine import describe

SIZES = {"640x480": (480, 640), "1920x1080": (1080, 1920)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="", help="MetaNet checkpoint (default: shipped)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from restyle import zoo
    from restyle.engines.arbitrary import ArbitraryEngine
    from restyle.engines.arbitrary_config import ArbitrarySetup
    from restyle.engines.fast import FastEngine
    from restyle.engines.fast_config import FastSetup
    from restyle.engines.holder import Engines
    from restyle.examples import example_path
    from restyle.imaging import as_tensor
    from restyle.models.checkpoint import save_meta_net
    from restyle.models.meta_net import MetaNet

    model = args.model
    if not model and zoo.arbitrary_model() is None:
        torch.manual_seed(0)
        model = str(Path(tempfile.mkdtemp()) / "random-meta.safetensors")
        save_meta_net(model, MetaNet())
        print("no MetaNet shipped: timing a freshly initialised one", file=sys.stderr)
    painting = as_tensor(example_path("starry_night"))
    photo = as_tensor(example_path("parrots"))
    cuda = args.device.startswith("cuda")
    runtimes = ["torch"] if cuda else ["onnx", "torch"]
    variants: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
    engines = Engines(device=args.device)  # one VGG19 for every runtime
    first: dict[str, ArbitraryEngine] = {}
    for network in ("microast", "metanet"):
        for runtime in runtimes:
            setup = ArbitrarySetup(
                network=network, model=model if network == "metanet" else "", runtime=runtime
            )
            engine = engines.get("arbitrary", setup)
            assert isinstance(engine, ArbitraryEngine)
            first.setdefault(network, engine)
            variants[f"{network}-{runtime}"] = engine.stylizer([painting]).stylize
    for runtime in runtimes:
        fast = engines.get("fast", FastSetup(runtime=runtime))
        assert isinstance(fast, FastEngine)
        variants[f"fast-zoo-{runtime}"] = fast.stylizer("starry-night").stylize

    results: dict[str, object] = {
        "machine": describe(),  # with PyTorch's CPU capability and threads
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "style_pass_ms": {},
        "style_size": {},
        "frames": {},
    }
    for network, engine in first.items():

        def style_pass(engine: ArbitraryEngine = engine) -> None:
            engine._styles.clear()
            engine.network(painting)
            if cuda:
                torch.cuda.synchronize()

        pass_ms = _median_ms(style_pass, warmup=args.warmup, repeats=args.repeats)
        results["style_pass_ms"][network] = round(pass_ms, 1)  # type: ignore[index]
        results["style_size"][network] = engine.trained_style_size  # type: ignore[index]
        print(
            f"{network} style pass: {pass_ms:.1f} ms (painting analysed at "
            f"{engine.trained_style_size} px)"
        )
    for size_name in args.sizes.split(","):
        height, width = SIZES[size_name]
        frame = torch.nn.functional.interpolate(photo, size=(height, width), mode="bilinear")
        timings: dict[str, list[float]] = {name: [] for name in variants}
        for run in variants.values():
            for _ in range(args.warmup):
                run(frame)
        for _ in range(args.repeats):
            for name, run in variants.items():
                began = time.perf_counter()
                run(frame)
                if cuda:
                    torch.cuda.synchronize()
                timings[name].append((time.perf_counter() - began) * 1000)
        row = {}
        for name, values in timings.items():
            ms = statistics.median(values)
            row[name] = {"ms": round(ms, 1), "fps": round(1000 / ms, 1)}
            print(f"{size_name} {name}: {ms:.1f} ms ({1000 / ms:.1f} fps)")
        results["frames"][size_name] = row  # type: ignore[index]
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


def _median_ms(run: Callable[[], None], *, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


if __name__ == "__main__":
    raise SystemExit(main())
