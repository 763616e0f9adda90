"""Screen variants of the personal-style recipe at fixed step counts, several runs at once.

`refine_time.py` measures the shipped recipe against the clock on a CPU; trying a dozen
variants that way takes a day. Here each variant trains for step counts that stand for the
CPU's budgets (by default 55, 125 and 385 steps: what the screening's base recipe, BASE,
reached in 2, 5 and 15 minutes on a 2-core Xeon), scaled by how much dearer a step of the
variant is (batch x pixels), and is scored as `refine_time.py` scores: medians over the
evaluation photos of `restyle.metrics` content distance and style distance relative to the
arbitrary pass. On a GPU the runs go side by side (--jobs); the steps, not the seconds,
are what carries over to the CPU.

    python benchmarks/refine_screen.py --device cuda --jobs 8 --json screen.json \\
        --sheet screen.jpg
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import shutil
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from refine_time import EVAL, EVAL_PHOTOS, label, score
from restyle.training.config import PERSONAL_CPU

# The recipe the variants change: PERSONAL_CPU as it was when screened (docs/fast.md,
# "Screening at fixed steps"; docs/refine-screen-*.json), so the table keeps its meaning as the
# shipped recipe moves on.
BASE = dataclasses.replace(
    PERSONAL_CPU, batch_size=4, learning_rate=1e-4, style_size=512, content_target=1.1
)
BASE_PIXELS = BASE.batch_size * BASE.image_size**2  # the steps' unit of cost

# Option runs the variants share.
B2 = ["--batch-size", "2"]
LR3 = ["--learning-rate", "3e-4"]
T10 = ["--content-target", "1.0"]

# Each variant: options given after BASE's own (the last of an option wins).
VARIANTS: dict[str, list[str]] = {
    "personal": [],
    "t1.0": T10,
    "t0.9": ["--content-target", "0.9"],
    "lr3e-4": LR3,
    "lr3e-4-t1.0": [*LR3, *T10],
    "lr3e-4-t1.0-seed1": [*LR3, *T10, "--seed", "1"],
    "lr3e-4-t0.9": [*LR3, "--content-target", "0.9"],
    "lr1e-3-t1.0": ["--learning-rate", "1e-3", *T10],
    "lr1e-3-t0.9": ["--learning-rate", "1e-3", "--content-target", "0.9"],
    "head-t1.0": ["--freeze", "encoder", *T10],
    "head-lr3e-4-t1.0": ["--freeze", "encoder", *LR3, *T10],
    "head-lr3e-4-t0.9": ["--freeze", "encoder", *LR3, "--content-target", "0.9"],
    "all-t1.0": ["--freeze=", *T10],
    "b2-lr3e-4-t1.0": [*B2, *LR3, *T10],
    "384b2-lr3e-4-t1.0": ["--image-size", "384", *B2, *LR3, *T10],
    "tv5-lr3e-4-t1.0": ["--tv-weight", "5", *LR3, *T10],
    "balance0.5-lr3e-4-t1.0": ["--style-balance", "0.5", *LR3, *T10],
    "c3+4-lr3e-4-t1.0": ["--content-layers", "relu3_2,relu4_2", *LR3, *T10],
    "style1024-lr3e-4-t1.0": ["--style-size", "1024", *LR3, *T10],
    "b2-lr3e-4-t1.0-style640": [*B2, *LR3, *T10, "--style-size", "640"],
    "b2-lr3e-4-t0.95-style640": [*B2, *LR3, "--content-target", "0.95", "--style-size", "640"],
    "b2-lr3e-4-t1.0-style768": [*B2, *LR3, *T10, "--style-size", "768"],
    "b2-lr3e-4-t1.0-style576": [*B2, *LR3, *T10, "--style-size", "576"],
    "signal1024-lr3e-4-t1.0": ["--signal-size", "1024", *LR3, *T10],
}


def option(arguments: list[str], name: str, default: int) -> int:
    """The last value given for `name` in `arguments` (default when absent)."""
    value = default
    for i, arg in enumerate(arguments[:-1]):
        if arg == name:
            value = int(arguments[i + 1])
    return value


def step_cost(arguments: list[str]) -> float:
    """A step's cost relative to BASE's, by batch x crop area."""
    size = option(arguments, "--image-size", BASE.image_size)
    return option(arguments, "--batch-size", BASE.batch_size) * size * size / BASE_PIXELS


def run_variant(
    name: str, extra: list[str], painting: Path, args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    """Train one variant on one painting to each step count; its scores and sheet photo."""
    import torch

    from restyle.api import stylize_tensor
    from restyle.cli import main as cli
    from restyle.engines.holder import Engines
    from restyle.imaging import as_tensor, resize_tensor_to_long_side, tensor_to_image
    from restyle.metrics import StyleMetrics
    from restyle.training.loop import MODEL_FILE

    torch.manual_seed(0)
    photos = {
        p: resize_tensor_to_long_side(as_tensor(EVAL / "photos" / f"{p}.jpg"), args.size)
        for p in args.photos
    }
    art = as_tensor(painting)
    metrics = StyleMetrics(device=args.device)
    engines = Engines(device=args.device)
    arguments = [
        *BASE.train_arguments(), "--sample-every", "0", "--checkpoint-every", "0",
        "--seed", "0", "--workers", "2", "--device", args.device, *extra,
    ]  # fmt: skip
    cost = step_cost(arguments)
    out = work / f"{name}-{painting.stem}"
    result: dict[str, Any] = {"variant": name, "painting": painting.name, "cost": cost}

    def arbitrary(tensor: torch.Tensor) -> torch.Tensor:
        return stylize_tensor(tensor, painting, method="arbitrary", engines=engines)

    base = score(arbitrary, photos, art, metrics)
    result["arbitrary"] = {"content": base["content"], "style": base["style"]}
    started = time.perf_counter()
    for i, cpu_steps in enumerate(args.steps):
        steps = max(1, round(cpu_steps / cost))
        command = ["train", "fast", "--init", "arbitrary", "--style", str(painting),
                   "--out", str(out), "--steps", str(steps), "--quiet", *arguments]  # fmt: skip
        if i:
            command.append("--resume")
        if cli(command) != 0:
            raise RuntimeError(f"training failed: {' '.join(command)}")
        model = work / f"{name}-{painting.stem}-{steps}.safetensors"
        shutil.copy(out / MODEL_FILE, model)

        def refined(tensor: torch.Tensor, model: Path = model) -> torch.Tensor:
            return stylize_tensor(tensor, model, method="fast", engines=engines)

        entry = score(refined, photos, art, metrics)
        if i == len(args.steps) - 1:
            picture = resize_tensor_to_long_side(entry["results"][args.sheet_photo], 256)
            tile = work / f"{name}-{painting.stem}.png"
            label(tensor_to_image(picture), f"{name} {entry['content']:.2f}").save(tile)
            result["tile"] = str(tile)
        result[str(cpu_steps)] = {
            "steps": steps,
            "content": entry["content"],
            "style_change": entry["style"] / base["style"] - 1,
        }
    result["seconds"] = time.perf_counter() - started
    return result


def attempt(name: str, painting: Path, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    try:
        return run_variant(name, VARIANTS[name], painting, args, work)
    except Exception:  # one broken variant must not lose the others' results
        return {"variant": name, "painting": painting.name, "error": traceback.format_exc()}


def save_sheet(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """The sheet photo through each finished run: a row per variant, a column per painting."""
    from PIL import Image

    tiles = {(r["variant"], r["painting"]): Image.open(r["tile"]) for r in results if "tile" in r}
    if not tiles:
        return
    width = max(t.width for t in tiles.values())
    height = max(t.height for t in tiles.values())
    names = [p.name for p in args.paintings]
    sheet = Image.new("RGB", (width * len(names), height * len(args.variants)), "white")
    for (variant, painting), tile in tiles.items():
        sheet.paste(tile, (names.index(painting) * width, args.variants.index(variant) * height))
    sheet.save(args.sheet, quality=85)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--jobs", type=int, default=1, help="runs side by side")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--paintings", nargs="+", type=Path,
                        default=sorted((EVAL / "styles").glob("*.jpg")))  # fmt: skip
    parser.add_argument("--photos", nargs="+", default=EVAL_PHOTOS)
    parser.add_argument("--steps", nargs="+", type=int, default=[55, 125, 385, 700],
                        help="step counts of BASE's cost (scaled per variant)")  # fmt: skip
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--sheet-photo", default="kodim23")
    parser.add_argument("--json", type=Path, required=True, help="JSON lines, one per run")
    parser.add_argument("--sheet", type=Path, default=None)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="refine-screen-"))
    results: list[dict[str, Any]] = []
    context = multiprocessing.get_context("spawn")  # CUDA cannot be forked
    with ProcessPoolExecutor(args.jobs, mp_context=context) as pool, args.json.open("w") as log:
        futures = [
            pool.submit(attempt, name, painting, args, work)
            for name in args.variants
            for painting in args.paintings
        ]
        for future in as_completed(futures):
            result = future.result()
            results.append(result)
            log.write(json.dumps({k: v for k, v in result.items() if k != "tile"}) + "\n")
            log.flush()
            summary = {k: v for k, v in result.items() if k not in ("tile", "error")}
            print(json.dumps(summary), result.get("error", ""), flush=True)
            if args.sheet is not None:  # after each run, so a run cut short keeps its sheet
                save_sheet(results, args)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
