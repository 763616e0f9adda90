"""`build.py train`: run every style's `restyle train fast` command for one profile."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any

from recipes import ROOT, load_recipes, shell_command


def add_train_parser(commands: Any) -> None:
    train = commands.add_parser("train", help="train the zoo's networks for one profile")
    train.add_argument("--profile", required=True, help="a [profile.NAME] of recipes.toml")
    train.add_argument("--only", nargs="+", metavar="ID", help="these styles only")
    train.add_argument(
        "--jobs", type=int, default=1, help="trainings at once (several share one GPU well)"
    )
    train.add_argument("--dry-run", action="store_true", help="print the commands only")
    train.add_argument(
        "--skip-done", action="store_true", help="skip styles whose run already finished"
    )
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="replace a profile setting (a rehearsal: `build.py package` refuses such runs)",
    )
    train.set_defaults(run=run_train)
    arbitrary = commands.add_parser(
        "train-arbitrary", help="train the arbitrary engine's MetaNet for one profile"
    )
    arbitrary.add_argument("--profile", required=True, help="an [arbitrary.NAME] of recipes.toml")
    arbitrary.add_argument("--dry-run", action="store_true", help="print the command only")
    arbitrary.set_defaults(run=run_train_arbitrary)


def run_train_arbitrary(args: argparse.Namespace) -> int:
    argv = load_recipes().arbitrary_command(args.profile)
    if args.dry_run:
        print(shell_command(argv))
        return 0
    return _run_all([("arbitrary", argv)], jobs=1)


def run_train(args: argparse.Namespace) -> int:
    recipes = load_recipes()
    styles = [recipes.style(i) for i in args.only] if args.only else recipes.styles
    overrides = dict(_setting(item) for item in args.set)
    pending = []
    for style in styles:
        run_dir = recipes.run_dir(style, args.profile)
        if args.skip_done and (run_dir / "model.safetensors").is_file() and _finished(run_dir):
            print(f"{style.id}: done, skipped", file=sys.stderr)
            continue
        pending.append((style.id, recipes.command(style, args.profile, overrides)))
    if args.dry_run:
        for _, argv in pending:
            print(shell_command(argv))
        return 0
    return _run_all(pending, jobs=max(1, args.jobs))


def _setting(item: str) -> tuple[str, str]:
    key, equals, value = item.partition("=")
    if not equals or not key:
        raise SystemExit(f"--set {item!r}: expected KEY=VALUE, e.g. steps=3")
    return key, value


def _finished(run_dir: Any) -> bool:
    from restyle.models.checkpoint import read_metadata

    info = read_metadata(run_dir / "model.safetensors")["info"]["training"]
    return bool(info["steps"] >= info["total_steps"])


def _run_all(pending: list[tuple[str, list[str]]], *, jobs: int) -> int:
    """Runs the commands, `jobs` at a time, each logging to its run folder; 1 if any failed."""
    running: list[tuple[str, subprocess.Popen[bytes], float]] = []
    failed = []
    began = time.perf_counter()
    queue = list(pending)
    try:
        while queue or running:
            while queue and len(running) < jobs:
                style_id, argv = queue.pop(0)
                out_dir = ROOT / argv[argv.index("--out") + 1]
                out_dir.mkdir(parents=True, exist_ok=True)
                log = (out_dir / "train.out").open("wb")
                # `restyle` may not be on PATH on a bare machine; the module is the same program.
                process = subprocess.Popen(
                    [sys.executable, "-m", "restyle", *argv[1:], "--quiet"],
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )
                print(f"{style_id}: started", file=sys.stderr, flush=True)
                running.append((style_id, process, time.perf_counter()))
            time.sleep(1)
            for item in list(running):
                style_id, process, started = item
                if process.poll() is None:
                    continue
                running.remove(item)
                seconds = time.perf_counter() - started
                status = "ok" if process.returncode == 0 else f"FAILED (exit {process.returncode})"
                print(f"{style_id}: {status} in {seconds:.0f} s", file=sys.stderr, flush=True)
                if process.returncode != 0:
                    failed.append(style_id)
    except KeyboardInterrupt:
        # The interrupt (Ctrl-C, or `timeout -s INT` to the process group) reached the
        # trainings too: each saves its weights and stops. Wait for that, so that what runs
        # next (scoring, packing) finds every file complete.
        for style_id, process, _ in running:
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
            print(f"{style_id}: interrupted (exit {process.returncode})", file=sys.stderr)
        raise
    print(f"all done in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0
