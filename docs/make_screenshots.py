"""Screenshots of the web app for docs/web.md: `python docs/make_screenshots.py`.

Starts `restyle serve` on a free loopback port with a fresh data folder, drives Debian's headless
Chromium with Playwright through the main screens, on a desktop (1280x800) and a phone-sized
viewport (390x844, 2x pixels), and writes docs/images/web-{screen}-{desktop,phone}.png. A PNG
over MAX_BYTES is reduced to a 256-colour palette (Pillow) to keep the repository small.

Live mode's camera is Chromium's fake device fed with a Y4M video made here from the bundled
parrots photo (a slow pan), so the screenshot shows a photo, not a test pattern. While live mode
runs, the frame rate at each frame size is printed: the numbers quoted in docs/web.md.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image
from playwright.sync_api import Page, sync_playwright

from restyle.examples import example_path

OUT = Path(__file__).parent / "images"
MAX_BYTES = 400_000
DESKTOP = {"viewport": {"width": 1280, "height": 800}, "device_scale_factor": 1}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "RESTYLE_DATA_DIR": str(data_dir), "RESTYLE_MAX_JOBS_PER_CLIENT": "16"}
    log = (data_dir / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "restyle", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("restyle serve did not start")


def camera_video(path: Path, width: int = 640, height: int = 480, frames: int = 90) -> Path:
    """A Y4M (4:2:0) video panning slowly across the parrots photo, for the fake camera."""
    photo = Image.open(example_path("parrots")).convert("RGB")
    scale = max(width * 1.25 / photo.width, height / photo.height)
    photo = photo.resize((round(photo.width * scale), round(photo.height * scale)))
    ycbcr = np.asarray(photo.convert("YCbCr"))
    span = photo.width - width
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F15:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            x = round(span * (0.5 - 0.5 * np.cos(2 * np.pi * i / frames)))
            y0 = (photo.height - height) // 2
            frame = ycbcr[y0 : y0 + height, x : x + width]
            out.write(b"FRAME\n")
            out.write(np.ascontiguousarray(frame[:, :, 0]).tobytes())
            for channel in (1, 2):  # chroma at half resolution, as 4:2:0 has it
                plane = frame[:, :, channel].astype(np.float32)
                half = plane.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))
                out.write(np.round(half).astype(np.uint8).tobytes())
    return path


def launch_with_camera(playwright: Any, chromium: str | None, video: Path) -> Any:
    """Headless Chromium whose camera is the fake device playing `video` (no prompt)."""
    return playwright.chromium.launch(
        executable_path=chromium,
        args=[
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )


def save(page: Page, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    data = page.screenshot()
    if len(data) > MAX_BYTES:
        image = Image.open(io.BytesIO(data)).convert("RGB").quantize(colors=256)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=True)
        data = buffer.getvalue()
    (OUT / f"web-{name}.png").write_bytes(data)
    print(f"docs/images/web-{name}.png: {len(data) // 1000} KB")


def show(page: Page, selector: str) -> None:
    page.locator(selector).scroll_into_view_if_needed()
    page.evaluate(f"document.querySelector('{selector}').scrollIntoView({{block: 'start'}})")
    time.sleep(0.4)  # smooth scrolling settles


def wait_result(page: Page) -> None:
    page.locator("#result-image").wait_for(state="visible", timeout=120_000)
    page.wait_for_function(
        "() => { const i = document.querySelector('#result-image');"
        " return i.complete && i.naturalWidth > 0; }"
    )


def photo_screens(page: Page, device: str) -> None:
    page.set_input_files("#content-input", str(example_path("lighthouse")))
    page.locator(".style-card", has_text="The Starry Night").click()
    save(page, f"gallery-{device}")

    # A Gatys job: screenshot once previews have come in, then cancel it.
    page.check('input[name="method"][value="gatys"]')  # the radios come from /api/engines
    page.fill("#size", "128")
    page.fill("#iterations", "40")
    page.get_by_role("button", name="Stylize").click()
    page.wait_for_function(
        "() => !document.querySelector('#preview-figure').hidden"
        " && document.querySelector('#progress').value >= 0.3",
        timeout=300_000,
    )
    show(page, "#job")
    save(page, f"progress-{device}")
    page.get_by_role("button", name="Cancel").click()
    page.get_by_role("alert").wait_for(state="visible")

    # A fast job and its before/after comparison, the slider a little left of the middle.
    page.check('input[name="method"][value="fast"]')
    page.fill("#size", "512")
    page.get_by_role("button", name="Stylize").click()
    wait_result(page)
    page.evaluate(
        "() => { const s = document.querySelector('#compare-slider'); s.value = 40;"
        " s.dispatchEvent(new Event('input')); }"
    )
    show(page, "#result")
    save(page, f"result-{device}")


def live_screens(page: Page, device: str, measure: bool) -> None:
    page.get_by_role("tab", name="Live camera").click()
    page.select_option("#live-style", "the-scream")
    sizes = ["160x120", "240x180", "320x240"] if measure else ["240x180"]
    page.select_option("#live-size", sizes[0])
    page.get_by_role("button", name="Start the camera").click()
    page.wait_for_function(
        "() => Number(document.querySelector('#fps').textContent) > 0", timeout=120_000
    )
    for size in sizes:
        page.select_option("#live-size", size)
        time.sleep(12)  # the fps readout covers the last 2 s
        backend = page.text_content("#live-backend")
        print(f"live {size}: {page.text_content('#fps')} fps ({backend}, {device})")
    show(page, ".live")
    save(page, f"live-{device}")
    page.get_by_role("button", name="Stop").click()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chromium", default=shutil.which("chromium"), help="browser binary")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        video = camera_video(data_dir / "camera.y4m")
        server, url = start_server(data_dir)
        try:
            with sync_playwright() as playwright:
                browser = launch_with_camera(playwright, args.chromium, video)
                for device, options in (("desktop", DESKTOP), ("phone", PHONE)):
                    context = browser.new_context(**options)
                    page = context.new_page()
                    page.goto(url)
                    page.wait_for_selector("body[data-ready=true]")
                    page.wait_for_load_state("networkidle")
                    photo_screens(page, device)
                    live_screens(page, device, measure=device == "desktop")
                    context.close()
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
