"""Score one profile's training runs where they were trained; part of train_zoo.sh.

    python model-zoo/gpu/evaluate_runs.py --profile gpu-standard --out OUT/zoo-gpu-standard.json

For every style of recipes.toml with a run under zoo-runs/PROFILE/ID/: the network is first
stored in float16 (`--half`: what `build.py package` ships, half the bytes to hand back), then
run on the staged evaluation photos at `--size` px, and scored with `restyle.metrics` (VGG19
content and style distances against the photo and the painting, the artefact flags at that
size) beside the zoo style's arbitrary pass (MicroAST with the painting's signals) on the same
photos. Also recorded: the run's steps, seconds, images per second, last losses and exact
command (and whether it is the recipe's own: only those can be packaged), and each network's
convolution multiply-adds for a 512 × 512 frame. `build.py evaluate --gate` makes the shipping
decision later, after `build.py package`, at 512 and 1024 px.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpu_common import (
    EVAL_PHOTOS,
    INPUTS,
    arbitrary_pass,
    conv_macs,
    device,
    eval_photos,
    machine,
    say,
)
from recipes import load_recipes

MACS_SIDE = 512


def store_half(path: Path) -> None:
    """Rewrite a run's weights in float16 (metadata kept); a no-op if they already are."""
    from safetensors import safe_open

    from restyle.models.checkpoint import load_fast_network, save_fast_network

    with safe_open(str(path), framework="pt") as handle:
        first = next(iter(handle.keys()))
        if handle.get_slice(first).get_dtype() == "F16":
            return
    net, info = load_fast_network(path)
    save_fast_network(path, net, info=info, dtype=torch.float16)


def score(
    net: torch.nn.Module,
    photos: dict[str, torch.Tensor],
    painting: torch.Tensor,
    metrics: Any,
    on: torch.device,
) -> dict[str, Any]:
    from restyle.metrics import artefacts

    rows = []
    for name, photo in photos.items():
        with torch.no_grad():
            out = net(photo.to(on)).float().clamp(0, 1).cpu()
        d = metrics.distances(out, photo, painting)
        flags = artefacts(out).flags(photo=artefacts(photo))
        rows.append({"photo": name, "content": d.content, "style": d.style, "flags": flags})
    return {
        "content": statistics.median(r["content"] for r in rows),
        "style": statistics.median(r["style"] for r in rows),
        "flags": sorted({f"{r['photo']}: {f}" for r in rows for f in r["flags"]}),
        "rows": rows,
    }


def training_facts(run: Path, info: dict[str, Any]) -> dict[str, Any]:
    training = info.get("training", {})
    log = run / "train_log.jsonl"
    lines = log.read_text("utf-8").splitlines() if log.is_file() else []
    last = json.loads(lines[-1]) if lines else {}
    return {
        "steps": training.get("steps"),
        "total_steps": training.get("total_steps"),
        "finished": training.get("steps") == training.get("total_steps"),
        "seconds": training.get("seconds_this_run"),
        "images_per_second": last.get("images_per_second"),
        "losses": training.get("losses"),
        "computed_in": training.get("computed_in"),
        "data": training.get("data"),
        "command": training.get("command"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", required=True)
    parser.add_argument("--out", type=Path, required=True, help="the JSON to write")
    parser.add_argument("--size", type=int, default=512, help="long side of the results")
    parser.add_argument("--photos", nargs="+", default=list(EVAL_PHOTOS), metavar="NAME")
    parser.add_argument("--half", action="store_true", help="store the weights in float16 first")
    parser.add_argument("--train-seconds", type=float, help="the training step's wall time")
    args = parser.parse_args(argv)

    from restyle.imaging import as_tensor
    from restyle.metrics import StyleMetrics
    from restyle.models.checkpoint import load_fast_network

    began = time.perf_counter()
    on = device()
    recipes = load_recipes()
    photos = eval_photos(args.size, args.photos)
    metrics = StyleMetrics(device=on)
    styles: dict[str, Any] = {}
    for style in recipes.styles:
        run = recipes.run_dir(style, args.profile)
        model = run / "model.safetensors"
        if not model.is_file():
            continue
        if args.half:
            store_half(model)
        net, info = load_fast_network(model, device=on)
        painting = as_tensor(INPUTS / "zoo-styles" / style.painting)
        record: dict[str, Any] = training_facts(run, info)
        recipe = shlex.join([*recipes.command(style, args.profile), "--quiet"])
        record["is_recipe_command"] = record["command"] == recipe
        record["network"] = {**score(net, photos, painting, metrics, on)}
        record["network"]["macs_512"] = conv_macs(net, side=MACS_SIDE)
        baseline = arbitrary_pass(style.id, on)
        if baseline is not None:
            record["arbitrary"] = score(baseline, photos, painting, metrics, on)
            record["arbitrary"]["macs_512"] = conv_macs(baseline, side=MACS_SIDE)
        styles[style.id] = record
        say(line(style.id, record))
    if not styles:
        raise SystemExit(f"no runs under zoo-runs/{args.profile}/")
    result = {
        "profile": args.profile,
        "size": args.size,
        "photos": list(photos),
        "machine": machine(),
        "train_wall_seconds": args.train_seconds,
        "evaluate_seconds": round(time.perf_counter() - began, 1),
        "styles": styles,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", "utf-8")
    say(f"wrote {args.out}")
    return 0


def line(style_id: str, record: dict[str, Any]) -> str:
    n = record["network"]
    text = (
        f"{style_id}: {record['steps']}/{record['total_steps']} steps in {record['seconds']} s "
        f"({record['images_per_second']} img/s); style {n['style']:.3f} content "
        f"{n['content']:.2f}, {len(n['flags'])} flags, {n['macs_512'] / 1e9:.1f} GMAC"
    )
    if "arbitrary" in record:
        a = record["arbitrary"]
        text += f" | arbitrary pass: style {a['style']:.3f} content {a['content']:.2f}"
    return text


if __name__ == "__main__":
    raise SystemExit(main())
