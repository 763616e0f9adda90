"""int8 against float32 for the feed-forward networks under onnxruntime on the CPU.

What is compared, in one process on one machine, for each network the CPU paths run per frame:
- `microast`: the arbitrary engine's default network for a painting (MicroAST with the
  painting's style signals folded into its weights, what the live camera exports);
- `refined`: the zoo's shipped network for the same painting (MicroAST refined for it);
- `metanet`: the MetaNet's generated network for the same painting (only if one is shipped).

Each is exported to ONNX (float32, as `restyle export onnx` writes it) and quantised three ways
with onnxruntime's own tools after its shape-inference pre-processing: dynamic (weights uint8,
activations quantised per call), and static with per-channel int8 weights and uint8 activations
calibrated on `--calibration` evaluation photos at 320 px, in the QOperator and the QDQ format.
Speed: median milliseconds of a 640×480 frame over `--repeats` rounds that call every variant
once in turn, after two untimed calls. Quality: PSNR of each int8 output against the float32
output of the same network on evaluation photos not used for calibration, at 512 px (min and
median), and a contact sheet of 1:1 crops (float32 | each int8 variant) per network.

    python benchmarks/int8_onnx.py --json docs/benchmarks-int8-cpu.json \
        --sheet docs/images/int8-onnx.jpg
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from frame_networks import frame_networks
from machine import describe

ROOT = Path(__file__).resolve().parents[1]
EVAL_PHOTOS = ROOT / ".." / "shared" / "data" / "eval" / "photos"
FRAME = (480, 640)
CELL = 256


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--style", default="starry-night", help="a zoo style id")
    parser.add_argument("--calibration", type=int, default=8, help="photos for calibration")
    parser.add_argument("--test", type=int, default=6, help="photos for PSNR")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--sheet", type=Path)
    args = parser.parse_args()

    from restyle.imaging import as_tensor, resize_tensor_to_long_side
    from restyle.onnx_export import OnnxTransformNet, export_onnx

    try:
        networks = frame_networks(args.style)
    except ValueError as exc:
        parser.error(str(exc))

    photos = sorted(EVAL_PHOTOS.glob("*.jpg"))
    calibration = [
        resize_tensor_to_long_side(as_tensor(p), 320) for p in photos[: args.calibration]
    ]
    test_photos = photos[args.calibration : args.calibration + args.test]
    tests = [resize_tensor_to_long_side(as_tensor(p), 512) for p in test_photos]
    frame = torch.rand(1, 3, *FRAME, generator=torch.Generator().manual_seed(0))
    workdir = Path(tempfile.mkdtemp(prefix="restyle-int8-"))

    results: dict[str, Any] = {
        "machine": describe(),
        "style": args.style,
        "frame": f"{FRAME[1]}x{FRAME[0]}",
        "calibration_photos": [p.stem for p in photos[: args.calibration]],
        "test_photos": [p.stem for p in test_photos],
        "networks": {},
    }
    rows = []
    for name, net in networks.items():
        files = _quantised(export_onnx(net.eval(), workdir / f"{name}.onnx"), calibration)
        runners = {kind: OnnxTransformNet(path) for kind, path in files.items()}
        times = _timings(runners, frame, args.repeats)
        references = [runners["float32"](x).clamp(0, 1) for x in tests]
        entry_results = {}
        crops = []
        for kind, runner in runners.items():
            outputs = [runner(x).clamp(0, 1) for x in tests]
            psnr = [_psnr(out, ref) for out, ref in zip(outputs, references, strict=True)]
            ms = statistics.median(times[kind])
            entry_results[kind] = {
                "ms": round(ms, 1),
                "fps": round(1000 / ms, 1),
                "vs_float32": round(statistics.median(times["float32"]) / ms, 2),
                "psnr_min": None if kind == "float32" else round(min(psnr), 1),
                "psnr_median": None if kind == "float32" else round(statistics.median(psnr), 1),
                "bytes": files[kind].stat().st_size,
            }
            crops.append(outputs[0][..., 96 : 96 + CELL, 128 : 128 + CELL])
            shown = entry_results[kind]
            print(
                f"{name} {kind}: {ms:.0f} ms ({shown['vs_float32']}x float32), "
                f"PSNR min {shown['psnr_min']} median {shown['psnr_median']} dB",
                flush=True,
            )
        results["networks"][name] = entry_results
        rows.append((name, list(runners), crops))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    if args.sheet:
        _sheet(rows).save(args.sheet, quality=90)
    return 0


def _quantised(float32: Path, calibration: list[torch.Tensor]) -> dict[str, Path]:
    """The float32 file and its int8 versions, by variant name."""
    from onnxruntime.quantization import (  # type: ignore[import-untyped]
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import (  # type: ignore[import-untyped]
        quant_pre_process,
    )

    from restyle.onnx_export import INPUT_NAME

    class Photos(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.inputs = iter([{INPUT_NAME: x.numpy()} for x in calibration])

        def get_next(self) -> dict[str, Any] | None:
            return next(self.inputs, None)

    prepared = float32.with_suffix(".pre.onnx")
    quant_pre_process(str(float32), str(prepared))
    files = {"float32": float32}
    files["int8-dynamic"] = float32.with_suffix(".dynamic.onnx")
    quantize_dynamic(str(prepared), str(files["int8-dynamic"]), weight_type=QuantType.QUInt8)
    for label, quant_format in (("qoperator", QuantFormat.QOperator), ("qdq", QuantFormat.QDQ)):
        files[f"int8-static-{label}"] = float32.with_suffix(f".{label}.onnx")
        quantize_static(
            str(prepared),
            str(files[f"int8-static-{label}"]),
            Photos(),
            quant_format=quant_format,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    return files


def _timings(runners: dict[str, Any], frame: torch.Tensor, repeats: int) -> dict[str, list[float]]:
    for run in runners.values():
        run(frame)
        run(frame)
    times: dict[str, list[float]] = {kind: [] for kind in runners}
    for _ in range(repeats):
        for kind, run in runners.items():
            began = time.perf_counter()
            run(frame)
            times[kind].append((time.perf_counter() - began) * 1000)
    return times


def _psnr(out: torch.Tensor, reference: torch.Tensor) -> float:
    mse = float((out - reference).square().mean())
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(1 / mse)).item()


def _sheet(rows: list[tuple[str, list[str], list[torch.Tensor]]]) -> Any:
    from PIL import Image, ImageDraw

    from restyle.imaging import tensor_to_image

    columns = max(len(kinds) for _, kinds, _ in rows)
    label = 16
    canvas = Image.new("RGB", (columns * CELL, len(rows) * (CELL + label)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (name, kinds, crops) in enumerate(rows):
        y = r * (CELL + label)
        for c, (kind, crop) in enumerate(zip(kinds, crops, strict=True)):
            draw.text((c * CELL + 4, y + 2), f"{name} {kind}", fill="black")
            canvas.paste(tensor_to_image(crop), (c * CELL, y + label))
    return canvas


if __name__ == "__main__":
    sys.exit(main())
