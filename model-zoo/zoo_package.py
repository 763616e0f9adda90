"""`build.py package`: copy finished training runs into the package as registry entries.

For each style of recipes.toml and each profile given: the run's weights are saved in float16
as src/restyle/zoo/ID.VARIANT.safetensors (the profile's `variant`, else its network `size`),
the painting is shipped as a ≥512 px thumbnail src/restyle/zoo/ID.jpg, and registry.json gets
the entry. Entries of other variants already in the registry are kept, so the refined, standard
and lite networks can be packaged separately; `--drop VARIANT` removes one (entry and file).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from PIL import Image
from recipes import ROOT, Recipes, Style, load_recipes, shell_command

ZOO_DIR = ROOT / "src" / "restyle" / "zoo"
REGISTRY = ZOO_DIR / "registry.json"
THUMBNAIL_LONG_SIDE = 640
MIN_THUMBNAIL_LONG_SIDE = 512


def add_signals_parser(commands: Any) -> None:
    signals = commands.add_parser(
        "signals", help="record each painting's style signals (the 'arbitrary' variant)"
    )
    signals.add_argument("--only", nargs="+", metavar="ID", help="these styles only")
    signals.set_defaults(run=run_signals)


def run_signals(args: argparse.Namespace) -> int:
    """Every style gets the 'arbitrary' variant: the shipped MicroAST's signals for its painting,
    analysed as the arbitrary engine analyses any painting, written into the registry."""
    import dataclasses

    from restyle import zoo
    from restyle.engines.arbitrary import ArbitraryEngine
    from restyle.imaging import as_tensor
    from restyle.models.checkpoint import file_sha256

    recipes = load_recipes()
    registry = _read_registry()
    existing = {s["id"]: s for s in registry["styles"]}
    engine = ArbitraryEngine()
    styles = [recipes.style(i) for i in args.only] if args.only else recipes.styles
    for style in styles:
        entry = existing.get(style.id) or _new_entry(recipes, style)
        painting = recipes.painting_path(style)
        _, signals = engine.analyse(as_tensor(painting))
        values = {
            f.name: [round(float(v), 6) for v in getattr(signals, f.name).reshape(-1)]
            for f in dataclasses.fields(signals)
        }
        entry["variants"]["arbitrary"] = {
            "network": {"design": "microast"},
            "signals": values,
            "training": {
                "command": "python model-zoo/build.py signals",
                "style_size": engine.trained_style_size,
                "painting_sha256": file_sha256(painting),
                "microast_sha256": engine.model_sha256,
            },
        }
        entry["variants"] = {
            n: entry["variants"][n] for n in zoo.VARIANT_ORDER if n in entry["variants"]
        }
        existing[style.id] = entry
        print(f"{style.id}: signals recorded", file=sys.stderr)
    registry["styles"] = [existing[s.id] for s in recipes.styles if s.id in existing]
    zoo.parse_registry(registry)
    REGISTRY.write_text(json.dumps(registry, indent=1, ensure_ascii=False) + "\n", "utf-8")
    return 0


def add_package_parser(commands: Any) -> None:
    package = commands.add_parser("package", help="copy finished runs into the package")
    package.add_argument("--profile", action="append", default=[], help="profile(s) to ship")
    package.add_argument(
        "--arbitrary", metavar="PROFILE", help="also ship the MetaNet of this [arbitrary.*] run"
    )
    package.add_argument("--only", nargs="+", metavar="ID", help="these styles only")
    package.add_argument(
        "--drop", action="append", default=[], metavar="VARIANT", help="remove this variant"
    )
    package.set_defaults(run=run_package)


def run_package(args: argparse.Namespace) -> int:
    import torch

    from restyle import zoo
    from restyle.models.checkpoint import load_fast_network, save_fast_network

    recipes = load_recipes()
    previous = _read_registry()
    existing = {s["id"]: s for s in previous["styles"]}
    styles = [recipes.style(i) for i in args.only] if args.only else recipes.styles
    if not args.profile and not args.drop:
        styles = []
    for style in styles:
        entry = existing.get(style.id) or _new_entry(recipes, style)
        for dropped in args.drop:
            record = entry["variants"].pop(dropped, None)
            if record is not None and record.get("file"):
                (ZOO_DIR / record["file"]).unlink(missing_ok=True)
                print(f"{style.id}: dropped {dropped}", file=sys.stderr)
        for profile in args.profile:
            settings = recipes.settings(style, profile)
            size = settings.get("variant", settings.get("size", "standard"))
            run_model = recipes.run_dir(style, profile) / "model.safetensors"
            net, info = load_fast_network(run_model)
            training = info.get("training", {})
            if training.get("steps") != training.get("total_steps"):
                raise SystemExit(f"{style.id}/{profile}: {run_model} is not finished; train it")
            expected = _recorded(recipes, style, profile)
            if training.get("command") != expected:
                raise SystemExit(
                    f"{style.id}/{profile}: {run_model} was trained with a command that is not "
                    f"the recipe's:\n  {training.get('command')}\n  {expected}"
                )
            shipped = ZOO_DIR / f"{style.id}.{size}.safetensors"
            save_fast_network(shipped, net, info=info, dtype=torch.float16)
            shipped.chmod(0o644)  # package data: readable by everyone who installs it
            entry["variants"][size] = {
                **_file_record(shipped),
                "network": info["network"],
                "training": {
                    **_training_record(profile, info),
                    "painting_sha256": info["style"]["sha256"],
                },
            }
            print(f"{style.id}: {size} from {profile} -> {shipped.name}", file=sys.stderr)
        # Standard first: the order in which `restyle` prefers them.
        entry["variants"] = {
            n: entry["variants"][n] for n in zoo.VARIANT_ORDER if n in entry["variants"]
        }
        existing[style.id] = entry
    ordered = [existing[s.id] for s in recipes.styles if s.id in existing]
    registry: dict[str, Any] = {
        # Records this step does not make (the MicroAST network's) stay as they were.
        **previous,
        "format": zoo.REGISTRY_FORMAT,
        "version": zoo.REGISTRY_VERSION,
        "styles": ordered,
    }
    arbitrary = (
        _package_arbitrary(recipes, args.arbitrary) if args.arbitrary else previous.get("arbitrary")
    )
    registry.pop("arbitrary", None)
    if arbitrary is not None:
        registry["arbitrary"] = arbitrary
    zoo.parse_registry(registry)  # what the package will read back must parse
    REGISTRY.write_text(json.dumps(registry, indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {REGISTRY.relative_to(ROOT)} ({len(ordered)} styles)", file=sys.stderr)
    return 0


def _recorded(recipes: Recipes, style: Style, profile: str) -> str:
    """The command as `restyle train` records it: the recipe's, plus the runner's --quiet."""
    return shell_command([*recipes.command(style, profile), "--quiet"])


def _package_arbitrary(recipes: Recipes, profile: str) -> dict[str, Any]:
    import torch

    from restyle.models.checkpoint import load_meta_net, save_meta_net

    argv = recipes.arbitrary_command(profile)
    run_model = ROOT / argv[argv.index("--out") + 1] / "model.safetensors"
    meta, info = load_meta_net(run_model)
    training = info["training"]
    if training["steps"] != training["total_steps"]:
        raise SystemExit(f"arbitrary/{profile}: {run_model} is not finished")
    if training["command"] != shell_command([*argv, "--quiet"]):
        raise SystemExit(f"arbitrary/{profile}: trained with another command than the recipe's")
    shipped = save_meta_net(ZOO_DIR / "arbitrary.safetensors", meta, info=info, dtype=torch.float16)
    shipped.chmod(0o644)
    print(f"arbitrary: MetaNet from {profile} -> {shipped.name}", file=sys.stderr)
    return {
        **_file_record(shipped),
        "provisional": bool(recipes.arbitrary_profiles[profile].get("provisional", False)),
        "meta": info["meta"],
        "styles": info["styles"],
        "training": _training_record(profile, info),
    }


def _file_record(shipped: Path) -> dict[str, Any]:
    from restyle.models.checkpoint import file_sha256

    return {"file": shipped.name, "sha256": file_sha256(shipped), "bytes": shipped.stat().st_size}


def _training_record(profile: str, info: dict[str, Any]) -> dict[str, Any]:
    """What the registry keeps of a checkpoint's training record."""
    training = info["training"]
    return {
        "profile": profile,
        "command": training["command"],
        "steps": training["steps"],
        "seed": training["config"]["seed"],
        "data": training["data"],
        "loss": info["loss"],
        "losses": training["losses"],
        "config": training["config"],
        "device": training["device"],
        "computed_in": training.get("computed_in", "float32"),
        "seconds": training["seconds_this_run"],
        "torch": training["torch"],
    }


def _read_registry() -> dict[str, Any]:
    """The registry as it stands (entries of other sizes and the MetaNet are kept)."""
    if not REGISTRY.is_file():
        return {"styles": []}
    registry: dict[str, Any] = json.loads(REGISTRY.read_text("utf-8"))
    return registry


def _new_entry(recipes: Recipes, style: Style) -> dict[str, Any]:
    row = recipes.manifest_row(style)
    painting = recipes.painting_path(style)
    thumbnail = ZOO_DIR / f"{style.id}.jpg"
    with Image.open(painting) as image:
        image = image.convert("RGB")
        if max(image.size) < MIN_THUMBNAIL_LONG_SIDE:
            raise SystemExit(f"{style.id}: {painting} is under {MIN_THUMBNAIL_LONG_SIDE} px")
        image.thumbnail((THUMBNAIL_LONG_SIDE, THUMBNAIL_LONG_SIDE), Image.Resampling.LANCZOS)
        image.save(thumbnail, quality=90, optimize=True)
        width, height = image.size
    year = f" ({style.year})" if style.year else ""
    return {
        "id": style.id,
        "title": style.title,
        "artist": style.artist,
        "year": style.year,
        "licence": "public domain",
        "attribution": (
            f"{style.artist}, {style.title}{year}. Public domain; image from "
            f"{row['source']} ({row['original_path']})."
        ),
        "painting": {
            "file": thumbnail.name,
            "width": width,
            "height": height,
            "source_file": style.painting,
        },
        "variants": {},
    }
