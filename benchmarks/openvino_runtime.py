"""onnxruntime against OpenVINO (float32, bf16 hint) for the feed-forward networks on the CPU.

What is compared, in one process on one machine: each network the CPU paths run per frame for
a zoo style's painting (`frame_networks.py`: its MicroAST, its refined network if it ships one,
the MetaNet's generated network if a MetaNet is shipped).

Each is exported to ONNX once (`restyle.onnx_export`, as the engines export it) and run three
ways: onnxruntime (float32, the portable runtime), OpenVINO float32, and OpenVINO with its bf16
inference-precision hint (`restyle.cpu_runtimes.OpenVinoTransformNet`). Speed: for each frame
size, median milliseconds over `--repeats` rounds that call every runtime once in turn, after
two untimed calls of each (so a busy machine slows all three alike). Quality: PSNR of each
OpenVINO output against onnxruntime's on `--photos` evaluation photos at 512 px (min and
median), and a contact sheet of 1:1 crops (onnxruntime | OpenVINO f32 | OpenVINO bf16 | their
difference × 8) per network.

    python benchmarks/openvino_runtime.py --json docs/benchmarks-openvino-cpu.json \\
        --sheet docs/images/openvino-runtime.jpg
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from frame_networks import frame_networks
from machine import describe

ROOT = Path(__file__).resolve().parents[1]
EVAL_PHOTOS = ROOT / ".." / "shared" / "data" / "eval" / "photos"
SIZES = ((180, 240), (360, 640), (720, 1280))
CELL = 256
RUNTIMES = ("onnxruntime", "openvino-f32", "openvino-bf16")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--style", default="starry-night", help="a zoo style id (its painting)")
    parser.add_argument("--photos", type=int, default=6, help="evaluation photos for PSNR")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--sheet", type=Path)
    args = parser.parse_args()

    from restyle.cpu_runtimes import OpenVinoTransformNet
    from restyle.imaging import as_tensor, resize_tensor_to_long_side
    from restyle.onnx_export import OnnxTransformNet, export_onnx

    try:
        networks = frame_networks(args.style)
    except ValueError as exc:
        parser.error(str(exc))

    photos = sorted(EVAL_PHOTOS.glob("*.jpg"))[: args.photos]
    tests = [resize_tensor_to_long_side(as_tensor(p), 512) for p in photos]
    workdir = Path(tempfile.mkdtemp(prefix="restyle-openvino-"))
    results: dict[str, Any] = {
        "machine": describe(),
        "style": args.style,
        "photos": [p.stem for p in photos],
        "repeats": args.repeats,
        "networks": {},
    }
    rows = []
    for name, net in networks.items():
        path = export_onnx(net.eval(), workdir / f"{name}.onnx")
        runners = {
            "onnxruntime": OnnxTransformNet(path),
            "openvino-f32": OpenVinoTransformNet(path, precision="f32"),
            "openvino-bf16": OpenVinoTransformNet(path, precision="bf16"),
        }
        network: dict[str, Any] = {"sizes": {}, "psnr": {}}
        for height, width in SIZES:
            frame = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
            times = _timings(runners, frame, args.repeats)
            medians = {kind: statistics.median(values) for kind, values in times.items()}
            network["sizes"][f"{width}x{height}"] = {
                kind: {
                    "ms": round(ms, 1),
                    "fps": round(1000 / ms, 1),
                    "vs_onnxruntime": round(medians["onnxruntime"] / ms, 2),
                }
                for kind, ms in medians.items()
            }
            shown = ", ".join(f"{kind} {ms:.0f} ms" for kind, ms in medians.items())
            print(f"{name} {width}x{height}: {shown}", flush=True)
        references = [runners["onnxruntime"](x).clamp(0, 1) for x in tests]
        crops = []
        for kind in RUNTIMES:
            outputs = [runners[kind](x).clamp(0, 1) for x in tests]
            if kind != "onnxruntime":
                psnr = [_psnr(out, ref) for out, ref in zip(outputs, references, strict=True)]
                network["psnr"][kind] = {
                    "min": round(min(psnr), 1),
                    "median": round(statistics.median(psnr), 1),
                }
                print(f"{name} {kind}: PSNR min {min(psnr):.1f} dB", flush=True)
            crops.append(outputs[0][..., 96 : 96 + CELL, 128 : 128 + CELL])
        crops.append(((crops[2] - crops[0]).abs() * 8).clamp(0, 1))
        results["networks"][name] = network
        rows.append((name, crops))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    if args.sheet:
        _sheet(rows).save(args.sheet, quality=92)
    return 0


def _timings(runners: dict[str, Any], frame: torch.Tensor, repeats: int) -> dict[str, list[float]]:
    for runner in runners.values():  # compile, allocate, warm the caches
        runner(frame)
        runner(frame)
    times: dict[str, list[float]] = {kind: [] for kind in runners}
    for _ in range(repeats):
        for kind, runner in runners.items():
            start = time.perf_counter()
            runner(frame)
            times[kind].append((time.perf_counter() - start) * 1000)
    return times


def _psnr(out: torch.Tensor, reference: torch.Tensor) -> float:
    mse = float(((out - reference) ** 2).mean())
    return 99.0 if mse == 0 else 10 * float(torch.log10(torch.tensor(1.0 / mse)))


def _sheet(rows: list[tuple[str, list[torch.Tensor]]]) -> Any:
    from PIL import Image, ImageDraw

    from restyle.imaging import tensor_to_image

    labels = ["onnxruntime", "OpenVINO f32", "OpenVINO bf16", "|bf16 - onnxruntime| x 8"]
    label_h = 18
    sheet = Image.new("RGB", (CELL * len(labels), (CELL + label_h) * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, (name, crops) in enumerate(rows):
        top = row * (CELL + label_h)
        for column, (label, crop) in enumerate(zip(labels, crops, strict=True)):
            draw.text((column * CELL + 4, top + 3), f"{name}: {label}", fill="black")
            sheet.paste(tensor_to_image(crop), (column * CELL, top + label_h))
    return sheet


if __name__ == "__main__":
    raise SystemExit(main())
