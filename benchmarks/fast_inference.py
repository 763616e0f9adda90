"""Inference speed of the fast engine's transform networks, against an eager reference.

What is measured: milliseconds per image (and frames per second) of one forward pass of a
feed-forward style transfer network, for

- a REFERENCE network defined below: an independent re-implementation of the design of
  pytorch/examples' fast_neural_style `TransformerNet` (Johnson et al. with instance norm,
  reflection padding and upsample-then-convolve; 0-255 input), run the way that example runs it:
  eager PyTorch, float32. It is the baseline every ratio is taken against;
- Restyle's `TransformNet` in its two presets, "standard" (the same layers and widths as the
  reference) and "lite" (16/32/64 channels, 3 residual blocks, 5×5 outer kernels), run the ways
  Restyle can run them: eager float32 and onnxruntime on the CPU; on CUDA, float32, float16
  (autocast, or half weights) in channels-last layout, replayed as a CUDA graph, compiled with
  `torch.compile`, and compiled then replayed as a CUDA graph; on CUDA also as a batch of frames.

Method: networks are randomly initialised from a fixed seed (speed does not depend on the
weights); the input is the bundled `parrots` photo resized to each size. Each variant starts from
the same float32 NCHW tensor already on the device and ends at the network's output on the device
(in the variant's own dtype): a variant's input cast and layout change are timed, host-device
copies are not. Every variant of a size is built and given `--warmup` untimed calls (which also
compile, autotune and capture); then `--repeats` rounds call each variant once in turn, each call
timed alone (with `torch.cuda.synchronize()` around it on a GPU), so a noisy machine's slow spells
fall on all variants alike. The median call is reported, per image (a batch's time divided by its
size; `--batch` frames at the largest size, 8 by default on CUDA). Everything runs under
`torch.inference_mode()` with PyTorch's default backend settings (so float32 convolutions on an
Ampere or newer GPU use TF32 unless `--no-tf32`). Machines are noisy: the reference is measured in
the same run, and every speed-up is a ratio within that run.

Output parity: every Restyle variant's output is compared with the float32 eager output of the
same network on the same weights and input (on a GPU, computed with TF32 off): max absolute
difference and PSNR in dB with a peak of 1 (the image range), so float16 and onnxruntime parity
is visible. The reference and the lite network have weights of their own, so neither is compared
with another network. Speed only: whether the lite network stylizes as well as the standard
one is a question for trained weights, not for this script.

Each variant is guarded: one that fails (an unsupported compile mode, out of memory) reports its
error and the others still run.

Usage (from the repository root, with Restyle installed or `PYTHONPATH=src`):

    python benchmarks/fast_inference.py --device cpu --json docs/benchmarks-fast-cpu.json
    python benchmarks/fast_inference.py --device cpu --quick        # smoke run: 512x512 only
    python benchmarks/fast_inference.py --device cuda --json docs/benchmarks-fast-h100.json
    python benchmarks/fast_inference.py --device cuda --variants 'cuda-reference-*,cuda-lite-*'

On CPU the variants are cpu-{reference,standard,lite}-fp32 and cpu-{standard,lite}-onnx (the
lite network under onnxruntime is the intended CPU path). On CUDA they are cuda-reference-fp32,
cuda-standard-fp32 and, for each of standard and lite, cuda-NET-fp16-autocast, cuda-NET-fp16,
cuda-NET-fp16-graph, cuda-NET-fp16-compile and cuda-NET-fp16-compile-graph. `--compile-mode
default` compiles much faster than the default, max-autotune-no-cudagraphs.
"""

from __future__ import annotations

import argparse
import copy
import fnmatch
import json
import math
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from machine import describe
from restyle.models.instance_norm import InstanceNorm
from restyle.models.transform_net import SIZES, TransformNet

# --- the reference network --------------------------------------------------------------------


class ReflectConv(nn.Module):
    """Reflection padding of kernel // 2, then a convolution."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pad(x))


class UpsampleReflectConv(nn.Module):
    """Nearest-neighbour upsampling, then a reflection-padded convolution."""

    def __init__(self, c_in: int, c_out: int, kernel: int, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.conv = ReflectConv(c_in, c_out, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=self.scale, mode="nearest"))


class ReferenceResidual(nn.Module):
    """conv → IN → ReLU → conv → IN, plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_a = ReflectConv(channels, channels, 3)
        self.norm_a = nn.InstanceNorm2d(channels, affine=True)
        self.conv_b = ReflectConv(channels, channels, 3)
        self.norm_b = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.norm_a(self.conv_a(x)))
        return x + self.norm_b(self.conv_b(y))


class ReferenceTransformer(nn.Module):
    """The pytorch/examples fast_neural_style design: (B, 3, H, W) in 0..255 → same shape."""

    def __init__(self) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.down = nn.ModuleList(
            [ReflectConv(3, 32, 9), ReflectConv(32, 64, 3, 2), ReflectConv(64, 128, 3, 2)]
        )
        self.down_norms = nn.ModuleList([nn.InstanceNorm2d(c, affine=True) for c in (32, 64, 128)])
        self.residuals = nn.Sequential(*(ReferenceResidual(128) for _ in range(5)))
        self.up = nn.ModuleList(
            [UpsampleReflectConv(128, 64, 3, 2), UpsampleReflectConv(64, 32, 3, 2)]
        )
        self.up_norms = nn.ModuleList([nn.InstanceNorm2d(c, affine=True) for c in (64, 32)])
        self.out = ReflectConv(32, 3, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, norm in zip(self.down, self.down_norms, strict=True):
            x = self.relu(norm(conv(x)))
        x = self.residuals(x)
        for conv, norm in zip(self.up, self.up_norms, strict=True):
            x = self.relu(norm(conv(x)))
        return self.out(x)


# --- networks and variants --------------------------------------------------------------------

NETWORKS = ("reference", "standard", "lite")


def build_network(name: str, seed: int) -> nn.Module:
    """A randomly initialised network, the same for a given (name, seed)."""
    torch.manual_seed(seed + NETWORKS.index(name))
    if name == "reference":
        return ReferenceTransformer().eval()
    net = TransformNet(SIZES[name]).eval()
    # Spread the instance norms' scales and shifts and centre the output on mid-grey, so that
    # the parity figures are taken at trained-like magnitudes rather than at init's 1 and 0.
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, InstanceNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.2)
        last = [m for m in net.modules() if isinstance(m, nn.Conv2d)][-1]
        assert last.bias is not None
        last.bias.add_(0.5)
    return net


class Prepared(nn.Module):
    """Casts the float32 NCHW input to the variant's dtype and layout, then runs the network."""

    def __init__(self, net: nn.Module, dtype: torch.dtype, channels_last: bool) -> None:
        super().__init__()
        self.net = net
        self.dtype = dtype
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.to(dtype=self.dtype, memory_format=self.memory_format))


@dataclass(frozen=True)
class Variant:
    name: str
    device: str  # "cpu" or "cuda"
    network: str  # one of NETWORKS
    how: str  # see make_runner
    description: str


def _variants() -> list[Variant]:
    cpu = [
        Variant("cpu-reference-fp32", "cpu", "reference", "fp32", "reference, eager float32"),
        Variant("cpu-standard-fp32", "cpu", "standard", "fp32", "standard, eager float32"),
        Variant("cpu-standard-onnx", "cpu", "standard", "onnx", "standard, onnxruntime"),
        Variant("cpu-lite-fp32", "cpu", "lite", "fp32", "lite, eager float32"),
        Variant("cpu-lite-onnx", "cpu", "lite", "onnx", "lite, onnxruntime"),
    ]
    cuda = [
        Variant("cuda-reference-fp32", "cuda", "reference", "fp32", "reference, eager float32"),
        Variant("cuda-standard-fp32", "cuda", "standard", "fp32", "standard, eager float32"),
    ]
    for network in ("standard", "lite"):
        cuda += [
            Variant(
                f"cuda-{network}-fp16-autocast",
                "cuda",
                network,
                "autocast",
                f"{network}, float16 autocast, channels-last (as FastStylizer)",
            ),
            Variant(
                f"cuda-{network}-fp16",
                "cuda",
                network,
                "half",
                f"{network}, float16 weights, channels-last",
            ),
            Variant(
                f"cuda-{network}-fp16-graph",
                "cuda",
                network,
                "half-graph",
                f"{network}, float16, channels-last, CUDA graph",
            ),
            Variant(
                f"cuda-{network}-fp16-compile",
                "cuda",
                network,
                "half-compile",
                f"{network}, float16, channels-last, torch.compile",
            ),
            Variant(
                f"cuda-{network}-fp16-compile-graph",
                "cuda",
                network,
                "half-compile-graph",
                f"{network}, float16, channels-last, torch.compile + CUDA graph",
            ),
        ]
    return cpu + cuda


VARIANTS = _variants()


class Autocast(nn.Module):
    """Runs the network under float16 autocast (channels-last input), as FastStylizer does."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cuda", dtype=torch.float16):
            return self.net(x.contiguous(memory_format=torch.channels_last))


class Runners:
    """Builds each variant's callable; shares compiled modules between variants of a network."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.compiled: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}

    def make(self, variant: Variant, net: nn.Module, x: torch.Tensor) -> Callable[[], torch.Tensor]:
        """A no-argument callable that runs `variant` on the input `x` and returns its output."""
        device = torch.device(variant.device)
        how = variant.how
        if how == "onnx":
            from restyle.onnx_export import OnnxTransformNet, export_onnx

            path = export_onnx(copy.deepcopy(net), self.workdir / f"{variant.network}.onnx")
            session = OnnxTransformNet(path, threads=self.args.threads or 0)
            return lambda: session(x)
        if how == "fp32":
            module: nn.Module = copy.deepcopy(net).to(device)
            return lambda: module(x)
        if how == "autocast":
            module = Autocast(copy.deepcopy(net).to(device, memory_format=torch.channels_last))
            return lambda: module(x)
        if how == "half":
            module = half_channels_last(net, device)
            return lambda: module(x)
        if how == "half-graph":
            return cuda_graph(half_channels_last(net, device), x)
        if how in ("half-compile", "half-compile-graph"):
            if variant.network not in self.compiled:
                self.compiled[variant.network] = torch.compile(
                    half_channels_last(net, device), mode=self.args.compile_mode, dynamic=False
                )
            compiled = self.compiled[variant.network]
            if how == "half-compile":
                return lambda: compiled(x)
            return cuda_graph(compiled, x)
        raise ValueError(f"unknown variant kind {how!r}")


def half_channels_last(net: nn.Module, device: torch.device) -> nn.Module:
    module = copy.deepcopy(net).to(device, dtype=torch.float16, memory_format=torch.channels_last)
    return Prepared(module, torch.float16, channels_last=True)


def cuda_graph(
    function: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
) -> Callable[[], torch.Tensor]:
    """Capture `function` on a static input; each call copies `x` in and replays the graph."""
    static_in = x.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):  # cuDNN plans, allocator pools and compiled kernels warm before capture
            function(static_in)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = function(static_in)

    def replay() -> torch.Tensor:
        static_in.copy_(x)
        graph.replay()
        return static_out

    return replay


# --- measuring --------------------------------------------------------------------------------


def parse_size(text: str) -> tuple[int, int]:
    """'1920x1080' → (height, width) = (1080, 1920)."""
    width, height = (int(v) for v in text.lower().split("x"))
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"size {text!r}: both sides must be positive")
    return height, width


def size_label(size: tuple[int, int]) -> str:
    return f"{size[1]}x{size[0]}"


def make_input(size: tuple[int, int], batch: int, device: torch.device) -> torch.Tensor:
    """The `parrots` photo resized to `size`, `batch` times (alternately mirrored), in [0, 1]."""
    try:
        from restyle.examples import example_path
        from restyle.imaging import image_to_tensor, load_image, resize_tensor

        path = example_path("parrots")
        if path is None or not path.is_file():
            raise FileNotFoundError("parrots")
        photo = resize_tensor(image_to_tensor(load_image(path)), size)
    except Exception:  # the photo is a nicety: any image serves a speed test
        generator = torch.Generator().manual_seed(0)
        photo = torch.rand(1, 3, *size, generator=generator)
    frames = [photo.flip(-1) if i % 2 else photo for i in range(batch)]
    return torch.cat(frames).contiguous().to(device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_call(run: Callable[[], torch.Tensor], device: torch.device) -> tuple[float, torch.Tensor]:
    """(seconds, output) of one call, the device synchronised before and after."""
    synchronize(device)
    start = time.perf_counter()
    out = run()
    synchronize(device)
    return time.perf_counter() - start, out


@dataclass
class Case:
    """One variant at one size and batch, while it is being measured."""

    variant: Variant
    row: dict[str, Any]
    run: Callable[[], torch.Tensor] | None = None
    out: torch.Tensor | None = None
    times: list[float] = field(default_factory=list)

    def fail(self, exc: BaseException) -> None:
        self.row["error"] = f"{type(exc).__name__}: {exc}".strip()
        self.row["traceback"] = traceback.format_exc(limit=6)
        self.run = self.out = None
        where = f"{self.variant.name} {self.row['size']} batch {self.row['batch']}"
        print(f"{where}: {self.row['error']}", flush=True)


def measure(
    cases: list[Case],
    runners: Runners,
    networks: dict[str, nn.Module],
    inputs: dict[str, torch.Tensor],
    device: torch.device,
    warmup: int,
    repeats: int,
) -> None:
    """Build and warm every variant, then time them in turns, one call each per round.

    Taking the rounds in turn spreads a noisy machine's slow spells over all variants alike, so
    the ratios stay fair even when the absolute times drift.
    """
    for case in cases:
        try:
            network = case.variant.network
            case.run = runners.make(case.variant, networks[network], inputs[network])
            first, case.out = timed_call(case.run, device)
            case.row["first_call_s"] = first
            for _ in range(warmup - 1):
                case.out = case.run()
            synchronize(device)
            print(f"  {case.variant.name}: ready (first call {first:.2f} s)", flush=True)
        except Exception as exc:  # one variant failing must not stop the others
            case.fail(exc)
    for _ in range(repeats):
        for case in cases:
            if case.run is None:
                continue
            try:
                elapsed, case.out = timed_call(case.run, device)
                case.times.append(elapsed)
            except Exception as exc:
                case.fail(exc)


@contextmanager
def no_tf32() -> Iterator[None]:
    """Full float32 convolutions and matmuls on CUDA, for the parity baseline."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def parity(out: torch.Tensor, golden: torch.Tensor) -> tuple[float, float | None]:
    """(max |out − golden|, PSNR in dB with peak 1; None when identical)."""
    diff = out.float().to(golden.device) - golden
    max_abs = float(diff.abs().max())
    mse = float(diff.double().pow(2).mean())
    return max_abs, (10 * math.log10(1.0 / mse) if mse > 0 else None)


# --- the machine ------------------------------------------------------------------------------


def describe_machine(device: torch.device, threads: int) -> dict[str, Any]:
    info: dict[str, Any] = describe() | {
        "onnxruntime_threads": threads or "onnxruntime default (one per physical core)",
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    if device.type == "cuda":
        info |= {
            "gpu": torch.cuda.get_device_name(device),
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "tf32_convolutions": torch.backends.cudnn.allow_tf32,
        }
    return info


# --- main -------------------------------------------------------------------------------------


def select_variants(device: torch.device, patterns: str | None) -> list[Variant]:
    chosen = [v for v in VARIANTS if v.device == device.type]
    if patterns:
        wanted = [p.strip() for p in patterns.split(",") if p.strip()]
        chosen = [v for v in chosen if any(fnmatch.fnmatchcase(v.name, p) for p in wanted)]
        if not chosen:
            names = ", ".join(v.name for v in VARIANTS if v.device == device.type)
            raise SystemExit(f"--variants {patterns!r} matches none of: {names}")
    return chosen


def format_row(row: dict[str, Any]) -> list[str]:
    if "error" in row:
        return [row["variant"], row["size"], str(row["batch"]), "failed", "", "", "", ""]
    ratio = row["speedup_vs_reference"]
    psnr = row.get("psnr_db")
    max_abs = row.get("max_abs_diff")
    if row["network"] == "reference":
        quality = ("", "")
    elif max_abs == 0:
        quality = ("0", "identical")
    else:
        quality = (f"{max_abs:.2g}", f"{psnr:.1f}" if psnr is not None else "identical")
    return [
        row["variant"],
        row["size"],
        str(row["batch"]),
        f"{row['ms_per_image']:.1f}",
        f"{row['fps']:.1f}",
        f"{ratio:.2f}×" if ratio is not None else "",
        *quality,
    ]


HEADER = [
    "variant",
    "size",
    "batch",
    "ms/image",
    "images/s",
    "vs reference",
    "max abs diff",
    "PSNR dB",
]


def print_table(rows: list[dict[str, Any]]) -> None:
    lines = [HEADER, ["---"] * len(HEADER), *(format_row(r) for r in rows)]
    print("\n" + "\n".join("| " + " | ".join(cells) + " |" for cells in lines), flush=True)
    for row in rows:
        if "error" in row:
            print(f"{row['variant']} {row['size']} batch {row['batch']}: {row['error']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu"
    )
    parser.add_argument("--sizes", default="512x512,1920x1080", help="WxH list, comma separated")
    parser.add_argument("--repeats", type=int, help="timed calls per case (CPU 5, CUDA 50)")
    parser.add_argument("--warmup", type=int, help="untimed calls first (CPU 1, CUDA 10)")
    parser.add_argument(
        "--batch", type=int, help="also batches of this many frames, largest size (CUDA 8, CPU 1)"
    )
    parser.add_argument("--variants", help="comma list of names or globs, e.g. 'cuda-lite-*'")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: defaults)")
    parser.add_argument("--compile-mode", default="max-autotune-no-cudagraphs")
    parser.add_argument("--cudnn-benchmark", action="store_true")
    parser.add_argument("--no-tf32", action="store_true", help="full float32 convolutions on CUDA")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: 512x512, few repeats")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    cuda = device.type == "cuda"
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    if args.quick:
        sizes = [(512, 512)]
    repeats = args.repeats or (3 if args.quick else 50 if cuda else 5)
    warmup = args.warmup if args.warmup is not None else (3 if args.quick else 10 if cuda else 1)
    batch = args.batch or (8 if cuda else 1)
    if args.threads:
        torch.set_num_threads(args.threads)
    if cuda:
        torch.backends.cudnn.benchmark = args.cudnn_benchmark
        if args.no_tf32:
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
    variants = select_variants(device, args.variants)

    shapes = [(size, 1) for size in sizes]
    if batch > 1:
        shapes.append((max(sizes, key=lambda s: s[0] * s[1]), batch))

    results: dict[str, Any] = describe_machine(device, args.threads)
    results["settings"] = {
        "device": args.device, "sizes": [size_label(s) for s in sizes], "batch": batch,
        "repeats": repeats, "warmup": warmup, "seed": args.seed,
        "compile_mode": args.compile_mode if cuda else None,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }  # fmt: skip
    print(json.dumps(results, indent=2), flush=True)

    networks = {name: build_network(name, args.seed) for name in NETWORKS}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        runners = Runners(args, Path(tmp))
        for size, frames in shapes:
            x = make_input(size, frames, device)
            inputs = {"reference": x * 255, "standard": x, "lite": x}
            cases = [
                Case(v, {"variant": v.name, "network": v.network, "how": v.how,
                         "description": v.description, "size": size_label(size),
                         "batch": frames})
                for v in variants
            ]  # fmt: skip
            print(f"{size_label(size)}, batch {frames}: {len(cases)} variants", flush=True)
            measure(cases, runners, networks, inputs, device, warmup, repeats)
            report(cases, networks, inputs, device, frames)
            for case in cases:
                rows.append(case.row)
                print(" | ".join(format_row(case.row)), flush=True)
            del x, inputs, cases
            if cuda:
                torch.cuda.empty_cache()
    results["results"] = rows
    print_table(rows)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.json}")


def report(
    cases: list[Case],
    networks: dict[str, nn.Module],
    inputs: dict[str, torch.Tensor],
    device: torch.device,
    frames: int,
) -> None:
    """Fill each case's row: speed, speed-up against the reference, parity of its output."""
    medians = {c.variant.name: statistics.median(c.times) for c in cases if c.times}
    reference = next(
        (
            medians[c.variant.name]
            for c in cases
            if c.variant.network == "reference" and c.variant.name in medians
        ),
        None,
    )
    goldens: dict[str, torch.Tensor] = {}
    if device.type == "cpu":  # there the float32 eager variant computes the baseline itself
        for case in cases:
            if case.variant.how == "fp32" and case.out is not None and case.times:
                goldens.setdefault(case.variant.network, case.out.float())
    for case in cases:
        if case.variant.name not in medians or case.out is None:
            if "error" not in case.row:
                case.row["error"] = "no timed call"
            continue
        per_call = medians[case.variant.name]
        ms = per_call * 1000 / frames
        case.row |= {
            "ms_per_image": ms, "fps": 1000 / ms,
            "ms_per_call_median": per_call * 1000,
            "ms_per_call_min": min(case.times) * 1000,
            "ms_per_call_all": [t * 1000 for t in case.times],
            "speedup_vs_reference": reference / per_call if reference else None,
        }  # fmt: skip
        network = case.variant.network
        if network == "reference":
            case.run = case.out = None
            continue
        try:
            if network not in goldens:
                goldens[network] = golden_output(networks[network], inputs[network], device)
            case.row["max_abs_diff"], case.row["psnr_db"] = parity(case.out, goldens[network])
        except Exception as exc:
            case.row["parity_error"] = f"{type(exc).__name__}: {exc}"
        case.run = case.out = None


def golden_output(net: nn.Module, x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The network's float32 eager output on `device` (TF32 off on CUDA)."""
    module = copy.deepcopy(net).to(device)
    with no_tf32():
        out = module(x).float().clone()
    synchronize(device)
    return out


if __name__ == "__main__":
    main()
