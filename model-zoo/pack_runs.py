"""Pack training runs into a few flat tar archives, and unpack them again.

    python model-zoo/pack_runs.py pack zoo-runs OUT [--profile standard ...]
    python model-zoo/pack_runs.py unpack OUT zoo-runs

For a machine that hands back only a few files: at most `--max-files` (8), each at most
`--max-bytes` (16 MiB), `--max-total` (64 MiB) together, no folders. `pack` writes
OUT/runs-1.tar, runs-2.tar, ... and OUT/MANIFEST.json (one of the 8 files), nothing else.

A run is a folder under RUNS_DIR holding model.safetensors or train.out (a failed run's log
comes back too); its model.safetensors, train_log.jsonl, train.out and last samples/*.jpg are
packed, its training state (train_state.safetensors) is not. A file too big for one archive
(the arbitrary MetaNet's float32 weights are 28 MiB) is split into parts across archives;
`--no-split` makes that an error instead. Runs go whole, while they fit in the total: ten
`standard` networks in float32 alone are 64.1 MiB, so what does not fit is left for the next
pack, which delivers only the runs that no earlier pack delivered unchanged
(RUNS_DIR/.packed.json keeps the sha256 of what went; `--again` ignores it).

`unpack` checks every archive's and member's sha256 against the manifest, refuses absolute
paths and `..`, joins the parts and restores RUNS_DIR/PROFILE/STYLE/... exactly as `train`
wrote it, so `build.py package` reads it unchanged. Unpack each delivery into the same
RUNS_DIR.

Standard library only: the machine that packs may have nothing else installed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import struct
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

MANIFEST = "MANIFEST.json"
FORMAT = "restyle-zoo-runs/1"
ARCHIVE = re.compile(r"runs-\d+\.tar")
RUN_MARKERS = ("model.safetensors", "train.out")
RUN_FILES = ("model.safetensors", "train_log.jsonl", "train.out")
MiB = 1 << 20
DEFAULT_MAX_BYTES = 16 * MiB
DEFAULT_MAX_FILES = 8
DEFAULT_MAX_TOTAL = 64 * MiB
MANIFEST_RESERVE = 1 * MiB  # counted against --max-total for MANIFEST.json (at most 1/8 of it)
RECORD = ".packed.json"  # in RUNS_DIR: the runs already delivered, with their files' sha256
BLOCK = 512
# What tar adds besides the data, counted generously so that an archive never outgrows the
# limit: per member a header block plus a pax extended header (two blocks, for long names);
# per archive two zero blocks at the end, the whole padded to a 10 KiB record.
MEMBER_OVERHEAD = 3 * BLOCK
ARCHIVE_OVERHEAD = 2 * BLOCK + tarfile.RECORDSIZE


class PackError(Exception):
    """A run cannot be packed or unpacked; the message says which file and why."""


@dataclass
class Piece:
    """One tar member: a whole file, or bytes [offset, offset + size) of one."""

    path: str  # relative to RUNS_DIR, POSIX
    offset: int
    size: int
    part: int = 0  # 0: the whole file; else 1, 2, ... in order

    @property
    def name(self) -> str:
        return self.path if self.part == 0 else f"{self.path}.part{self.part:02d}"

    @property
    def cost(self) -> int:
        return member_cost(self.size)


@dataclass
class Archive:
    name: str
    pieces: list[Piece] = field(default_factory=list)
    used: int = 0


def member_cost(size: int) -> int:
    return MEMBER_OVERHEAD + -(-size // BLOCK) * BLOCK


# --- pack -------------------------------------------------------------------------------------


def find_runs(runs_dir: Path, profiles: list[str] | None = None) -> list[Path]:
    """Every run folder under `runs_dir` (any depth), optionally only under these profiles."""
    runs = sorted(
        {p.parent for marker in RUN_MARKERS for p in runs_dir.rglob(marker) if p.is_file()}
    )
    parts = {run: run.relative_to(runs_dir).parts for run in runs}
    runs = [r for r in runs if parts[r] and not any(p.startswith(".") for p in parts[r])]
    return [r for r in runs if not profiles or parts[r][0] in profiles]


def run_files(run: Path) -> list[Path]:
    """What a run delivers: weights, logs and its last sample sheet."""
    files = [run / name for name in RUN_FILES if (run / name).is_file()]
    samples = sorted(p for p in (run / "samples").glob("*.jpg") if p.is_file())
    return files + samples[-1:]


def training_progress(model: Path) -> str | None:
    """'steps/total_steps' recorded in a Restyle checkpoint, read without torch; None if unknown."""
    try:
        with model.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > 16 * MiB:  # not a safetensors header
                return None
            header = json.loads(handle.read(length))
        training = json.loads(header["__metadata__"]["info"])["training"]
        return f"{training['steps']}/{training['total_steps']}"
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return None


def plan(files: dict[str, int], *, capacity: int, max_archives: int, split: bool) -> list[Archive]:
    """Places files (relative path -> size) into at most `max_archives` archives whose members
    cost at most `capacity` bytes each: largest first, each into the first archive with room;
    a file that fits in no archive is split into parts that fill the space left."""
    archives: list[Archive] = []

    def new_archive() -> Archive:
        if len(archives) == max_archives:
            total = sum(files.values())
            raise PackError(
                f"{len(files)} files ({total} bytes: {', '.join(sorted(files))}) do not fit "
                f"in {max_archives} archives of at most {capacity + ARCHIVE_OVERHEAD} bytes"
            )
        archives.append(Archive(f"runs-{len(archives) + 1}.tar"))
        return archives[-1]

    for path, size in sorted(files.items(), key=lambda item: (-item[1], item[0])):
        whole = Piece(path, 0, size)
        if whole.cost > capacity and not split:
            raise PackError(
                f"{path} is {size} bytes: over the {capacity + ARCHIVE_OVERHEAD}-byte limit "
                "of one archive, so it cannot be delivered"
            )
        target = next((a for a in archives if a.used + whole.cost <= capacity), None)
        if target is None and whole.cost <= capacity:
            target = new_archive()
        if target is not None:
            target.pieces.append(whole)
            target.used += whole.cost
            continue
        offset, part = 0, 1
        while offset < size:
            target = next((a for a in archives if capacity - a.used >= member_cost(BLOCK)), None)
            target = target or new_archive()
            room = (capacity - target.used - MEMBER_OVERHEAD) // BLOCK * BLOCK
            piece = Piece(path, offset, min(room, size - offset), part)
            target.pieces.append(piece)
            target.used += piece.cost
            offset, part = offset + piece.size, part + 1
    return archives


def pack(
    runs_dir: Path,
    out_dir: Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
    max_total: int = DEFAULT_MAX_TOTAL,
    profiles: list[str] | None = None,
    split: bool = True,
    again: bool = False,
) -> dict[str, Any]:
    """Writes out_dir/runs-N.tar and out_dir/MANIFEST.json for the runs not delivered before
    (every run with `again`), whole runs while they fit; returns the manifest, whose "left"
    lists the runs kept for the next call. Writes nothing when nothing is new."""
    runs = find_runs(runs_dir, profiles) if runs_dir.is_dir() else []
    if not runs:
        raise PackError(f"no runs under {runs_dir}" + (f" for {profiles}" if profiles else ""))
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(p.name == MANIFEST or ARCHIVE.fullmatch(p.name) for p in out_dir.iterdir()):
        raise PackError(f"{out_dir} already holds a pack: pack into an empty folder")
    others = [p for p in out_dir.rglob("*") if p.is_file()]
    max_archives = max_files - 1 - len(others)  # the manifest is one of the files
    reserve = min(MANIFEST_RESERVE, max_total // 8)
    budget = max_total - sum(p.stat().st_size for p in others) - reserve
    capacity = max_bytes - ARCHIVE_OVERHEAD
    smallest = member_cost(BLOCK) + ARCHIVE_OVERHEAD
    if max_archives < 1 or capacity < member_cost(BLOCK) or budget < smallest:
        raise PackError(
            f"{out_dir} leaves no room for an archive (--max-files {max_files}, --max-bytes "
            f"{max_bytes}, --max-total {max_total}, {len(others)} other files there)"
        )

    def rel(path: Path) -> str:
        return path.relative_to(runs_dir).as_posix()

    files = {run: run_files(run) for run in runs}
    digests = {rel(f): sha256_file(f) for run in runs for f in files[run]}
    delivered = {run: {rel(f): digests[rel(f)] for f in files[run]} for run in runs}
    record_path = runs_dir / RECORD
    record = _read_record(record_path)
    pending = [run for run in runs if again or record.get(rel(run)) != delivered[run]]
    if not pending:
        return {"format": FORMAT, "runs": [], "files": {}, "archives": [], "left": []}

    def layout(chosen: list[Path]) -> list[Archive]:
        sizes = {rel(f): f.stat().st_size for run in chosen for f in files[run]}
        return plan(sizes, capacity=capacity, max_archives=max_archives, split=split)

    def packed_bytes(archives: list[Archive]) -> int:
        return sum(a.used + ARCHIVE_OVERHEAD for a in archives)

    selected: list[Path] = []
    left: list[Path] = []
    for run in pending:
        alone = packed_bytes(layout([run]))  # a PackError here names what cannot go
        if alone > budget:
            raise PackError(
                f"{rel(run)} packs into {alone} bytes, more than the {budget} one delivery "
                f"may hold (--max-total {max_total}); it cannot be delivered"
            )
        try:
            fits = packed_bytes(layout([*selected, run])) <= budget
        except PackError:
            fits = False
        (selected if fits else left).append(run)
    archives = layout(selected)

    paths = {rel(f): f for run in selected for f in files[run]}
    stats = {name: f.stat() for name, f in paths.items()}
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "runs": [
            {"path": rel(run), "steps": training_progress(run / "model.safetensors")}
            for run in selected
        ],
        "left": [rel(run) for run in left],
        "files": {
            name: {
                "size": stats[name].st_size,
                "sha256": digests[name],
                "mtime": int(stats[name].st_mtime),
            }
            for name in paths
        },
        "archives": [],
    }
    for archive in archives:
        target = out_dir / archive.name
        members = []
        with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
            for piece in sorted(archive.pieces, key=lambda p: p.name):
                with paths[piece.path].open("rb") as source:
                    source.seek(piece.offset)
                    data = source.read(piece.size)
                if len(data) != piece.size:
                    raise PackError(f"{paths[piece.path]} changed while it was being packed")
                info = tarfile.TarInfo(piece.name)
                info.size, info.mode = piece.size, 0o644
                info.mtime = int(stats[piece.path].st_mtime)
                tar.addfile(info, io.BytesIO(data))
                members.append(
                    {
                        "name": piece.name,
                        "path": piece.path,
                        "offset": piece.offset,
                        "size": piece.size,
                        "sha256": hashlib.sha256(data).hexdigest(),
                    }
                )
        written = target.stat().st_size
        if written > max_bytes:  # the overhead estimate is an upper bound; this cannot happen
            raise PackError(f"{target} came out at {written} bytes, over {max_bytes}")
        manifest["archives"].append(
            {
                "name": archive.name,
                "bytes": written,
                "sha256": sha256_file(target),
                "members": members,
            }
        )
    text = json.dumps(manifest, indent=1) + "\n"
    if len(text.encode()) > min(reserve, max_bytes):
        raise PackError(f"the manifest came out over {reserve} bytes: pack fewer runs")
    (out_dir / MANIFEST).write_text(text, encoding="utf-8")
    record.update({rel(run): delivered[run] for run in selected})
    record_path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def _read_record(path: Path) -> dict[str, Any]:
    """Which runs earlier packs delivered: run path -> {file: sha256}."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(MiB), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- unpack -----------------------------------------------------------------------------------


def _safe_relative(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or "\\" in name or any(p in ("..", "") for p in path.parts):
        raise PackError(f"refusing member {name!r}: not a plain relative path")
    return path


def unpack(out_dir: Path, runs_dir: Path) -> list[str]:
    """Restores every file of out_dir/MANIFEST.json under runs_dir; returns their paths."""
    manifest_path = out_dir / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PackError(f"{manifest_path}: cannot read the manifest ({exc})") from exc
    if manifest.get("format") != FORMAT:
        raise PackError(f"{manifest_path}: not a {FORMAT} manifest")
    files: dict[str, dict[str, Any]] = manifest["files"]
    for rel in files:
        _safe_relative(rel)
    pieces: dict[str, list[tuple[int, int, str, str]]] = {rel: [] for rel in files}
    runs_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".unpack-", dir=runs_dir) as staging_name:
        staging = Path(staging_name)
        for number, archive in enumerate(manifest["archives"]):
            if not ARCHIVE.fullmatch(archive["name"]):
                raise PackError(f"refusing archive name {archive['name']!r}")
            path = out_dir / archive["name"]
            if not path.is_file():
                raise PackError(f"{path} is missing: fetch every file the manifest lists")
            if sha256_file(path) != archive["sha256"]:
                raise PackError(f"{path}: sha256 differs from the manifest's; fetch it again")
            expected = {m["name"]: m for m in archive["members"]}
            target = staging / str(number)
            with tarfile.open(path, "r:") as tar:
                members = tar.getmembers()
                for member in members:
                    _safe_relative(member.name)
                    if member.name not in expected or not member.isfile():
                        raise PackError(f"{path}: member {member.name!r} is not in the manifest")
                if sorted(m.name for m in members) != sorted(expected):
                    raise PackError(f"{path}: members differ from the manifest's")
                tar.extractall(target, filter="data")
            for name, member in expected.items():
                extracted = target / name
                if sha256_file(extracted) != member["sha256"]:
                    raise PackError(f"{path}: member {name} does not match its sha256")
                if member["path"] not in pieces:
                    raise PackError(f"{path}: member {name} belongs to no listed file")
                pieces[member["path"]].append(
                    (member["offset"], member["size"], str(extracted), name)
                )
        for rel, entry in files.items():
            joined = staging / "joined" / rel
            joined.parent.mkdir(parents=True, exist_ok=True)
            offset = 0
            with joined.open("wb") as sink:
                for start, size, source, name in sorted(pieces[rel]):
                    if start != offset:
                        raise PackError(f"{rel}: part {name} starts at {start}, expected {offset}")
                    sink.write(Path(source).read_bytes())
                    offset += size
            if offset != entry["size"] or sha256_file(joined) != entry["sha256"]:
                raise PackError(f"{rel}: the joined parts do not match the manifest's sha256")
        for rel in files:
            destination = runs_dir / rel
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / "joined" / rel, destination)
            if "mtime" in files[rel]:
                os.utime(destination, (files[rel]["mtime"], files[rel]["mtime"]))
    return list(files)


# --- command line -----------------------------------------------------------------------------


def _bytes(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*(|B|KiB|MiB|GiB)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r}: a byte count like 16MiB, 512KiB or 4096")
    scale = {"": 1, "B": 1, "KiB": 1 << 10, "MiB": MiB, "GiB": 1 << 30}[match.group(2)]
    return int(match.group(1)) * scale


def _report(manifest: dict[str, Any], runs_dir: Path, out_dir: Path) -> None:
    if not manifest["runs"]:
        print(
            f"nothing new to deliver: every run under {runs_dir} was packed before "
            "(--again packs them again)",
            file=sys.stderr,
        )
        return
    for run in manifest["runs"]:
        steps = f"{run['steps']} steps" if run["steps"] else "no readable model.safetensors"
        print(f"packed {run['path']}: {steps}", file=sys.stderr)
    for archive in manifest["archives"]:
        print(
            f"{out_dir / archive['name']}: {len(archive['members'])} members, "
            f"{archive['bytes']} bytes",
            file=sys.stderr,
        )
    if manifest["left"]:
        print(
            f"{len(manifest['left'])} runs did not fit in this delivery and are left for the "
            f"next pack (the same command again): {', '.join(manifest['left'])}",
            file=sys.stderr,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("pack", help="pack RUNS_DIR's runs into OUT_DIR")
    p.add_argument("runs_dir", type=Path, metavar="RUNS_DIR")
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    p.add_argument("--max-bytes", type=_bytes, default=DEFAULT_MAX_BYTES, help="default 16MiB")
    p.add_argument("--max-files", type=int, default=DEFAULT_MAX_FILES, help="default 8")
    p.add_argument("--max-total", type=_bytes, default=DEFAULT_MAX_TOTAL, help="default 64MiB")
    p.add_argument(
        "--profile", action="append", help="only RUNS_DIR/PROFILE (repeatable); default all"
    )
    p.add_argument(
        "--no-split", dest="split", action="store_false", help="a file over the limit is an error"
    )
    p.add_argument(
        "--again", action="store_true", help="also the runs an earlier pack delivered unchanged"
    )
    u = commands.add_parser("unpack", help="restore OUT_DIR's archives under RUNS_DIR")
    u.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    u.add_argument("runs_dir", type=Path, metavar="RUNS_DIR")
    args = parser.parse_args(argv)
    try:
        if args.command == "pack":
            manifest = pack(
                args.runs_dir,
                args.out_dir,
                max_bytes=args.max_bytes,
                max_files=args.max_files,
                max_total=args.max_total,
                profiles=args.profile,
                split=args.split,
                again=args.again,
            )
            _report(manifest, args.runs_dir, args.out_dir)
        else:
            restored = unpack(args.out_dir, args.runs_dir)
            print(f"{len(restored)} files restored under {args.runs_dir}", file=sys.stderr)
    except PackError as exc:
        print(f"pack_runs: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
