"""The web app's live camera with any painting, in headless Chromium: frames per second.

For each arbitrary network (`--networks`, default MicroAST then the MetaNet), one after the
other on the same machine: `restyle serve` with `RESTYLE_ARBITRARY_NETWORK` set to it, the page's
live mode fed by Chromium's fake camera (a slow pan over a bundled photo), a painting uploaded
as the live style (the server makes its network once; every frame then runs in the browser
with onnxruntime-web), and the page's own fps readout (the last 2 s) read after `--settle`
seconds at each frame size.

    python benchmarks/live_fps.py --json docs/benchmarks-live-cpu.json

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
import tempfile
import time
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


def measure(page: Any, painting: Path, sizes: list[str], settle: float) -> dict[str, float]:
    page.get_by_role("tab", name="Live camera").click()
    page.select_option("#live-size", sizes[0])
    page.set_input_files("#live-painting", str(painting))
    page.get_by_role("button", name="Start the camera").click()
    page.wait_for_function(
        "() => Number(document.querySelector('#fps').textContent) > 0", timeout=180_000
    )
    found = {}
    for size in sizes:
        page.select_option("#live-size", size)
        time.sleep(settle)
        found[size] = float(page.text_content("#fps") or "0")
    found["backend"] = page.text_content("#live-backend")  # type: ignore[assignment]
    page.get_by_role("button", name="Stop").click()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="+", default=["microast", "metanet"])
    parser.add_argument("--sizes", nargs="+", default=["160x120", "320x240"])
    parser.add_argument("--painting", type=Path, default=None, help="default: Starry Night")
    parser.add_argument("--settle", type=float, default=12.0)
    parser.add_argument("--chromium", default=shutil.which("chromium"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    from restyle.examples import example_path

    helpers = _screenshots()
    painting = args.painting or Path(str(example_path("starry_night")))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        video = helpers.camera_video(Path(folder) / "camera.y4m")
        for network in args.networks:
            data_dir = Path(folder) / network
            data_dir.mkdir()
            os.environ["RESTYLE_ARBITRARY_NETWORK"] = network
            server, url = helpers.start_server(data_dir)
            try:
                with sync_playwright() as playwright:
                    browser = helpers.launch_with_camera(playwright, args.chromium, video)
                    page = browser.new_context(**helpers.DESKTOP).new_page()
                    page.goto(url)
                    page.wait_for_selector("body[data-ready=true]")
                    results[network] = measure(page, painting, args.sizes, args.settle)
                    browser.close()
            finally:
                server.terminate()
                server.wait(timeout=30)
            print(network, results[network], flush=True)
    if args.json is not None:
        machine = {"platform": platform.platform(), "cpus": os.cpu_count()}
        args.json.write_text(json.dumps({"machine": machine, "fps": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
