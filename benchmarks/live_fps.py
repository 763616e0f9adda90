r"""The web app's live camera in headless Chromium: frames per second at each offered size.

The page's live mode is fed by Chromium's fake camera (a slow pan over a bundled photo) and runs
every frame in the browser with onnxruntime-web (WASM here: headless Chromium has no WebGPU
adapter without flags). At each frame size the page offers (its `#live-size` list, which is
live.js's FRAME_SIZES, or `--sizes`), after `--warmup` s the frames drawn in `--window` s are
counted (the page's `data-frames`): steadier than the page's own 2-s readout. Two kinds of
network:

- `--styles`: shipped styles (their `lite` network, GET /api/styles/{id}/model.onnx);
- `--networks`: a painting uploaded as the live style, with `RESTYLE_ARBITRARY_NETWORK` set to
  each network in turn (the server makes the painting's network once).

`--before-src DIR` also runs a server from another checkout's `src` (e.g. the last commit's,
`git archive HEAD src | tar -x -C /tmp/before`): both pages stay open and take turns,
`--rounds` times, so a change in the machine's load falls on both alike; each size's median
over the rounds is reported (and every round).

    python benchmarks/live_fps.py --json docs/benchmarks-live-cpu.json
    python benchmarks/live_fps.py --styles the-scream --networks microast --rounds 3 \
        --warmup 3 --window 6 --before-src /tmp/before/src \
        --json docs/benchmarks-live-sizes-cpu.json

Needs Debian's chromium and the project's web/node_modules (`make` installs both); it reuses
the screenshot script's server and camera helpers (docs/make_screenshots.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]


def _screenshots() -> Any:
    spec = importlib.util.spec_from_file_location(
        "make_screenshots", ROOT / "docs" / "make_screenshots.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def machine() -> dict[str, Any]:
    """The CPU's model name and the load averages (1, 5, 15 min) now."""
    model = ""
    with_lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    for line in with_lscpu.splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    return {
        "platform": platform.platform(),
        "cpu": model,
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


FRAMES_JS = "() => Number(document.querySelector('#live-canvas').dataset.frames || 0)"


def frame_rate(page: Any, warmup: float, window: float) -> float:
    """Frames drawn per second over `window` s, after `warmup` s for the size to settle."""
    time.sleep(warmup)
    frames, start = page.evaluate(FRAMES_JS), time.monotonic()
    time.sleep(window)
    return float(page.evaluate(FRAMES_JS) - frames) / (time.monotonic() - start)


def run_sizes(page: Any, sizes: list[str] | None, warmup: float, window: float) -> dict[str, Any]:
    """Starts the camera (the style or painting already chosen), then measures each size in
    turn; the backend the page reports is kept beside them. The camera is stopped after."""
    offered = page.eval_on_selector("#live-size", "s => [...s.options].map(o => o.value)")
    sizes = [s for s in (sizes or offered) if s in offered]
    page.select_option("#live-size", sizes[0])
    page.get_by_role("button", name="Start the camera").click()
    page.wait_for_function(
        "() => Number(document.querySelector('#live-canvas').dataset.frames) >= 3",
        timeout=180_000,
    )
    found: dict[str, Any] = {}
    for size in sizes:
        page.select_option("#live-size", size)
        found[size] = frame_rate(page, warmup, window)
    found["backend"] = page.text_content("#live-backend")
    page.get_by_role("button", name="Stop").click()
    return found


@contextmanager
def server(helpers: Any, data_dir: Path, src: Path | None, network: str) -> Iterator[str]:
    """`restyle serve` (from `src` when given) with `network` as its arbitrary network."""
    data_dir.mkdir(parents=True)
    saved = dict(os.environ)
    os.environ["RESTYLE_ARBITRARY_NETWORK"] = network
    if src is not None:
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(src), saved.get("PYTHONPATH")])
        )
    try:
        process, url = helpers.start_server(data_dir)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def open_page(helpers: Any, browser: Any, url: str, choose: Callable[[Any], None]) -> Any:
    page = browser.new_context(**helpers.DESKTOP).new_page()
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    page.get_by_role("tab", name="Live camera").click()
    choose(page)
    return page


def compare(
    helpers: Any,
    args: argparse.Namespace,
    pages: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Each version's page in turn, `--rounds` times (so a change in the machine's load falls
    on every version alike): per size, the median of the rounds' frame rates."""
    rounds: dict[str, list[dict[str, Any]]] = {version: [] for version in pages}
    for _ in range(args.rounds):
        for version, page in pages.items():
            rounds[version].append(run_sizes(page, args.sizes, args.warmup, args.window))
    found: dict[str, dict[str, Any]] = {}
    for version, runs in rounds.items():
        sizes = [key for key in runs[0] if key != "backend"]
        found[version] = {
            size: round(statistics.median(run[size] for run in runs), 1) for size in sizes
        }
        found[version]["rounds"] = [{s: round(run[s], 1) for s in sizes} for run in runs]
        found[version]["backend"] = runs[0]["backend"]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="*", default=["microast", "metanet"])
    parser.add_argument("--styles", nargs="*", default=[], help="shipped style ids")
    parser.add_argument("--sizes", nargs="+", default=None, help="default: all the page offers")
    parser.add_argument("--painting", type=Path, default=None, help="default: Starry Night")
    parser.add_argument("--warmup", type=float, default=3.0, help="s at a size before counting")
    parser.add_argument("--window", type=float, default=8.0, help="s of frames counted per size")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--before-src", type=Path, default=None)
    parser.add_argument("--chromium", default=shutil.which("chromium"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    from restyle.examples import example_path

    helpers = _screenshots()
    painting = args.painting or Path(str(example_path("starry_night")))
    versions: dict[str, Path | None] = {"this": None}
    if args.before_src is not None:
        versions = {"before": args.before_src.resolve(), "after": None}
    sources: list[tuple[str, str, Callable[[Any], None]]] = [
        (style, "microast", lambda p, s=style: p.select_option("#live-style", s))
        for style in args.styles
    ] + [
        (network, network, lambda p: p.set_input_files("#live-painting", str(painting)))
        for network in args.networks
    ]
    start = machine()
    results: dict[str, dict[str, Any]] = {version: {} for version in versions}
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        video = helpers.camera_video(Path(folder) / "camera.y4m")
        for name, network, choose in sources:
            with ExitStack() as stack:
                pages = {}
                for version, src in versions.items():
                    data_dir = Path(folder) / version / name
                    url = stack.enter_context(server(helpers, data_dir, src, network))
                    browser = helpers.launch_with_camera(playwright, args.chromium, video)
                    stack.callback(browser.close)
                    pages[version] = open_page(helpers, browser, url, choose)
                for version, found in compare(helpers, args, pages).items():
                    results[version][name] = found
                    print(version, name, found, flush=True)
    fps = results["this"] if args.before_src is None else results
    settings = {k: getattr(args, k) for k in ("warmup", "window", "rounds")}
    report = {
        "machine": start,
        "load_average_after": machine()["load_average"],
        "settings": settings,
        "fps": fps,
    }
    print(json.dumps(report, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
