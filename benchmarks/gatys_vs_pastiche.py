"""Restyle's gatys engine against pastiche, side by side in one run.

Question answered: how long does Restyle need to reach the loss that pastiche reaches after N
L-BFGS iterations, on the same content, style, size, VGG19 weights and loss weights?

- Both programs get the same pre-resized content and style PNGs (so no resize differs).
- One evaluator scores both outputs: Restyle's objective configured with pastiche's weights
  (content 0.01 x MSE at relu4_2; style 10 x our per-layer Gram loss at relu1_1..relu5_1, which is
  exactly pastiche's 10/C^2 x MSE of Grams normalised by H*W; no TV), in float32 on the saved
  8-bit PNG, i.e. on what a user gets. The script also prints pastiche's own final loss beside the
  evaluator's score of pastiche's output, as a check that the two objectives agree.
- Restyle runs its default coarse-to-fine schedule; the number of final-scale iterations K is
  found by a calibration run, then the timed runs use K and their outputs are scored again (K is
  raised until the saved output really is at or below pastiche's loss).
- "whole process": wall time of `python -m pastiche ...` vs `restyle stylize ...` (what a user
  waits for). "warm": in-process calls after a warm-up with networks already loaded (what the
  service pays per request).

Usage: python benchmarks/gatys_vs_pastiche.py --device cpu --size 256 --iterations 100
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from restyle.engines.gatys import GatysEngine
from restyle.engines.gatys_config import GatysConfig
from restyle.examples import example_path
from restyle.imaging import image_to_tensor, load_image, save_image

# pastiche's default objective in Restyle's units (see restyle.losses).
PASTICHE_WEIGHTS = {"content_weight": 0.01, "style_weight": 10.0, "tv_weight": 0.0}


def prepare_inputs(workdir: Path, size: int, content: str, style: str) -> tuple[Path, Path]:
    photo = load_image(example_path(content) or Path(content))
    painting = load_image(example_path(style) or Path(style))
    scale = size / max(photo.size)
    photo = photo.resize((round(photo.width * scale), round(photo.height * scale)), 1)
    # pastiche resizes the style to the content's pixel count; do it here so neither resizes.
    area_scale = math.sqrt(photo.width * photo.height / (painting.width * painting.height))
    painting = painting.resize(
        (round(painting.width * area_scale), round(painting.height * area_scale)), 1
    )
    content_path, style_path = workdir / "content.png", workdir / "style.png"
    photo.save(content_path)
    painting.save(style_path)
    return content_path, style_path


class Evaluator:
    """pastiche's objective, evaluated by Restyle's code at one fixed size, in float32."""

    def __init__(self, content: Path, style: Path, device: torch.device) -> None:
        config = GatysConfig(size=None, scales=1, precision="float32", **PASTICHE_WEIGHTS)
        self.engine = GatysEngine(config, device=device)
        content_t = image_to_tensor(load_image(content)).to(device)
        style_t = image_to_tensor(load_image(style)).to(device)
        self.targets = self.engine._targets(
            content_t, [style_t], [1.0], tuple(content_t.shape[-2:])
        )
        self.device = device

    @torch.no_grad()
    def __call__(self, image_path: Path) -> float:
        image = image_to_tensor(load_image(image_path)).to(self.device)
        total, _ = self.engine.objective(image, self.targets)
        return float(total)


def timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"command failed ({done.returncode}): {' '.join(command)}\n{done.stderr}")
    return elapsed, done.stdout + done.stderr


def run_pastiche_process(args, content: Path, style: Path, out: Path) -> tuple[float, float]:
    command = [
        sys.executable,
        "-m",
        "pastiche",
        "--content",
        str(content),
        "--styles",
        str(style),
        "--output",
        str(out),
        "--size",
        str(args.size),
        "--num-steps",
        str(args.iterations),
        "--device",
        args.device,
        "--seed",
        "0",
        "--info-step",
        str(args.iterations),
    ]
    elapsed, log = timed(command)
    last = [line for line in log.splitlines() if line.strip().startswith(str(args.iterations))]
    reported = float(last[-1].split()[-1]) if last else float("nan")
    return elapsed, reported


def pastiche_warm(args, content: Path, style: Path, out: Path) -> float:
    from pastiche.pastiche import PasticheArtist
    from pastiche.pastiche import save_image as pastiche_save

    def once() -> float:
        start = time.perf_counter()
        artist = PasticheArtist(str(content), [str(style)], device=args.device, size=args.size)
        for _ in range(args.iterations):
            artist.draw()
        pastiche_save(artist.pastiche, str(out))
        return time.perf_counter() - start

    once()  # warm-up: CUDA context, cuDNN plans, page cache
    return once()


def restyle_config(args, final_iterations: int, **overrides) -> GatysConfig:
    options = dict(size=args.size, iterations=final_iterations, seed=0, **PASTICHE_WEIGHTS)
    options.update(overrides)
    return GatysConfig(**options)


def calibrate(args, content: Path, style: Path, device: torch.device, target: float) -> int:
    """Smallest final-scale iteration count whose running loss reaches `target`."""
    config = restyle_config(args, args.iterations * 2, report_every=1)
    engine = GatysEngine(config, device=device)
    trace: list[tuple[int, int, float]] = []
    engine.run(
        image_to_tensor(load_image(content)),
        [image_to_tensor(load_image(style))],
        callback=lambda p: trace.append((p.scale, p.scales, p.loss)),
    )
    final_losses = [loss for scale, scales, loss in trace if scale == scales]
    for index, loss in enumerate(final_losses):
        if loss <= target:
            return index + 1
    return len(final_losses)


def restyle_process(args, content: Path, style: Path, out: Path, k: int) -> float:
    command = [
        sys.executable,
        "-m",
        "restyle.cli",
        "stylize",
        str(content),
        "-s",
        str(style),
        "-o",
        str(out),
        "--size",
        str(args.size),
        "--iterations",
        str(k),
        "--seed",
        "0",
        "--device",
        args.device,
        "--quiet",
        "--content-weight",
        str(PASTICHE_WEIGHTS["content_weight"]),
        "--style-weight",
        str(PASTICHE_WEIGHTS["style_weight"]),
    ]
    return timed(command)[0]


def restyle_warm(args, content: Path, style: Path, out: Path, config: GatysConfig) -> float:
    device = torch.device(args.device)
    engine = GatysEngine(config, device=device)
    content_t = image_to_tensor(load_image(content))
    style_t = image_to_tensor(load_image(style))

    def once() -> float:
        start = time.perf_counter()
        result = engine.run(content_t, [style_t])
        save_image(result, out)
        return time.perf_counter() - start

    once()
    return once()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=500, help="pastiche's N")
    parser.add_argument("--content", default="parrots")
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--skip-pastiche-warm", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    device = torch.device(args.device)
    results: dict[str, object] = {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs"
        + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""),
        "torch": torch.__version__,
        "size": args.size,
        "pastiche_iterations": args.iterations,
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        content, style = prepare_inputs(work, args.size, args.content, args.style)
        evaluate = Evaluator(content, style, device)
        p_out, r_out = work / "pastiche.png", work / "restyle.png"

        p_time, p_reported = run_pastiche_process(args, content, style, p_out)
        target = evaluate(p_out)
        results |= {
            "pastiche_process_s": p_time,
            "pastiche_reported_loss": p_reported,
            "pastiche_output_loss": target,
        }
        print(
            f"pastiche: {p_time:.1f} s whole process; loss reported {p_reported:.4g}, "
            f"its output scored {target:.4g}",
            flush=True,
        )

        k = calibrate(args, content, style, device, target)
        for _ in range(6):  # raise K until the saved output, not just the running loss, is there
            r_time = restyle_process(args, content, style, r_out, k)
            r_loss = evaluate(r_out)
            print(
                f"restyle: K={k} final-scale iterations: {r_time:.1f} s whole process, "
                f"output scored {r_loss:.4g}",
                flush=True,
            )
            if r_loss <= target:
                break
            k = math.ceil(k * 1.15)
        results |= {
            "restyle_final_iterations": k,
            "restyle_process_s": r_time,
            "restyle_output_loss": r_loss,
            "process_speedup": p_time / r_time,
        }

        warm_config = restyle_config(args, k)
        r_warm = restyle_warm(args, content, style, r_out, warm_config)
        results |= {"restyle_warm_s": r_warm, "restyle_warm_loss": evaluate(r_out)}
        single = restyle_config(args, args.iterations, scales=1)
        results["restyle_warm_single_scale_N_s"] = restyle_warm(args, content, style, r_out, single)
        results["restyle_warm_single_scale_N_loss"] = evaluate(r_out)
        if not args.skip_pastiche_warm:
            p_warm = pastiche_warm(args, content, style, p_out)
            results |= {"pastiche_warm_s": p_warm, "warm_speedup": p_warm / r_warm}
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
