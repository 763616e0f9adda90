"""Start-up cost of the command line: wall time of whole `restyle` processes, two source trees
side by side.

`--before REV` checks that revision out into a temporary git worktree; each round runs every
command once with the old tree and once with the current one (alternating which goes first),
both on this virtual environment's Python with `PYTHONPATH` pointing at the tree's `src/`, so
only the code differs. Medians over `--rounds`, and their ratio.

    python benchmarks/startup.py --before a2cd31b --json docs/startup-cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from machine import describe

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = {
    "restyle --help": ["--help"],
    "restyle stylize --help": ["stylize", "--help"],
    "restyle stylize --method fast (256 px)": [
        "stylize", "--method", "fast", "--style", "starry-night", "parrots",
        "-o", "{out}/styled.jpg", "--size", "256", "--quiet", "--device", "cpu",
    ],
}  # fmt: skip


def timed(src: Path, args: list[str], out: Path) -> float:
    environment = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, "-m", "restyle.cli", *(a.format(out=out) for a in args)]
    began = time.perf_counter()
    subprocess.run(command, env=environment, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.before],
            check=True,
            capture_output=True,
        )
        try:
            trees = {"before": old / "src", "after": ROOT / "src"}
            times: dict[str, dict[str, list[float]]] = {
                c: {"before": [], "after": []} for c in COMMANDS
            }
            for command in COMMANDS.values():  # warm the file cache and the ONNX export
                for tree in trees.values():
                    timed(tree, command, Path(tmp))
            for round_ in range(args.rounds):
                order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
                for name, command in COMMANDS.items():
                    for label in order:
                        times[name][label].append(timed(trees[label], command, Path(tmp)))
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                check=False,
                capture_output=True,
            )
    report: dict[str, Any] = {"machine": describe(), "before": args.before, "commands": {}}
    for name, runs in times.items():
        before, after = statistics.median(runs["before"]), statistics.median(runs["after"])
        report["commands"][name] = {
            "before_s": round(before, 3),
            "after_s": round(after, 3),
            "speedup": round(before / after, 2),
            "runs": runs,
        }
        print(f"{name}: {before:.2f} s -> {after:.2f} s ({before / after:.1f}x)", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
