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
from restyle.imaging import image_to_tensor, load_image

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
        sys.executable, "-m", "pastiche", "--content", str(content), "--styles", str(style),
        "--output", str(out), "--size", str(args.size), "--num-steps", str(args.iterations),
        "--device", args.device, "--seed", "0", "--info-step", str(args.iterations),
    ]  # fmt: skip
    elapsed, log = timed(command)
    last = [line for line in log.splitlines() if line.strip().startswith(str(args.iterations))]
    reported = float(last[-1].split()[-1]) if last else float("nan")
    return elapsed, reported


def pastiche_warm(args, content: Path, style: Path, evaluate: Evaluator) -> dict[str, float]:
    """Second of two in-process runs; its exact final loss, by pastiche and by our evaluator."""
    from pastiche.pastiche import VGG_MEAN, PasticheArtist

    def once() -> tuple[float, PasticheArtist]:
        start = time.perf_counter()
        artist = PasticheArtist(str(content), [str(style)], device=args.device, size=args.size)
        for _ in range(args.iterations):
            artist.draw()
        artist.pastiche.detach().cpu()  # the result a caller takes away: include the sync
        return time.perf_counter() - start, artist

    once()  # warm-up: CUDA context, cuDNN plans, page cache
    elapsed, artist = once()
    with torch.no_grad():
        own = artist._calc_loss().item()  # loss of the final image, pastiche's own code
        caffe = artist.pastiche.detach() + torch.tensor(
            VGG_MEAN, device=artist.pastiche.device
        ).view(1, 3, 1, 1)
        rgb = (caffe.flip(1) / 255.0).to(evaluate.device)
        ours = float(evaluate.engine.objective(rgb, evaluate.targets)[0])
    return {
        "pastiche_warm_s": elapsed,
        "pastiche_final_loss": own,
        "pastiche_final_loss_by_restyle_evaluator": ours,
    }


def restyle_config(args, final_iterations: int, **overrides) -> GatysConfig:
    options = dict(size=args.size, iterations=final_iterations, seed=0, **PASTICHE_WEIGHTS)
    options.update(overrides)
    return GatysConfig(**options)


def calibrate(args, content: Path, style: Path, device: torch.device, target: float) -> int:
    """Smallest final-scale iteration count whose loss reaches `target`."""
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
        sys.executable, "-m", "restyle.cli", "stylize", str(content), "-s", str(style),
        "-o", str(out), "--size", str(args.size), "--iterations", str(k), "--seed", "0",
        "--device", args.device, "--quiet",
        "--content-weight", str(PASTICHE_WEIGHTS["content_weight"]),
        "--style-weight", str(PASTICHE_WEIGHTS["style_weight"]),
    ]  # fmt: skip
    return timed(command)[0]


def restyle_warm(args, content: Path, style: Path, config: GatysConfig) -> tuple[float, float]:
    """Second of two in-process runs with the network loaded: (seconds, final loss)."""
    device = torch.device(args.device)
    engine = GatysEngine(config, device=device)
    content_t = image_to_tensor(load_image(content))
    style_t = image_to_tensor(load_image(style))
    reports: list = []

    def once() -> float:
        reports.clear()
        start = time.perf_counter()
        result = engine.run(content_t, [style_t], callback=reports.append)
        result.cpu()  # the caller takes the image away: include the device sync
        return time.perf_counter() - start

    once()
    return once(), reports[-1].loss


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
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
        + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""),
        "torch": torch.__version__, "size": args.size, "pastiche_iterations": args.iterations,
    }  # fmt: skip

    def say(text: str) -> None:
        print(text, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        content, style = prepare_inputs(work, args.size, args.content, args.style)
        evaluate = Evaluator(content, style, device)
        p_out, r_out = work / "pastiche.png", work / "restyle.png"

        if not args.skip_pastiche_warm:
            results |= pastiche_warm(args, content, style, evaluate)
            say(
                f"pastiche warm: {results['pastiche_warm_s']:.1f} s; final loss "
                f"{results['pastiche_final_loss']:.5g} (Restyle's evaluator: "
                f"{results['pastiche_final_loss_by_restyle_evaluator']:.5g})"
            )
        p_time, p_reported = run_pastiche_process(args, content, style, p_out)
        results |= {"pastiche_process_s": p_time, "pastiche_process_reported_loss": p_reported}
        say(f"pastiche process: {p_time:.1f} s; loss reported at step N: {p_reported:.5g}")
        target = min(p_reported, float(results.get("pastiche_final_loss", p_reported)))
        results["target_loss"] = target

        k = calibrate(args, content, style, device, target)
        for _ in range(8):  # calibration and timed runs may differ by rounding; confirm
            r_warm, r_loss = restyle_warm(args, content, style, restyle_config(args, k))
            if r_loss <= target:
                break
            k = math.ceil(k * 1.1)
        say(f"restyle warm: K={k} final-scale iterations, {r_warm:.2f} s, loss {r_loss:.5g}")
        r_time = restyle_process(args, content, style, r_out, k)
        say(f"restyle process: {r_time:.1f} s")
        results |= {
            "restyle_final_iterations": k, "restyle_warm_s": r_warm, "restyle_warm_loss": r_loss,
            "restyle_process_s": r_time, "process_speedup": p_time / r_time,
            "pastiche_png_scored_loss": evaluate(p_out), "restyle_png_scored_loss": evaluate(r_out),
        }  # fmt: skip
        if "pastiche_warm_s" in results:
            results["warm_speedup"] = float(results["pastiche_warm_s"]) / r_warm
        single = restyle_config(args, args.iterations, scales=1)
        n_time, n_loss = restyle_warm(args, content, style, single)
        results |= {
            "restyle_warm_single_scale_N_s": n_time,
            "restyle_warm_single_scale_N_loss": n_loss,
        }
        say(
            f"restyle warm, {args.iterations} iterations at one scale: {n_time:.2f} s, "
            f"loss {n_loss:.5g}"
        )
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
