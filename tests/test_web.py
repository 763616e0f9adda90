"""The web app in a real browser: Debian's headless Chromium, driven by Playwright, against a
real `restyle serve`. The camera is Chromium's fake device (a moving test pattern)."""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from tests.service_processes import Service
from tests.video_clips import make_clip

import restyle
from restyle.examples import example_path
from restyle.service.refine import ARTEFACT_PHOTOS

pytestmark = pytest.mark.timeout(600)

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

# Mean absolute difference (0-255, RGB) of two drawables scaled to the same small canvas, and
# the standard deviation of the first (a blank canvas has none).
IMAGE_STATS_JS = """
([a, b, width, height]) => {
  const pixels = (source) => {
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(source, 0, 0, width, height);
    return context.getImageData(0, 0, width, height).data;
  };
  const pa = pixels(a), pb = pixels(b);
  let diff = 0, sum = 0, squares = 0, n = 0;
  for (let i = 0; i < pa.length; i += 4) {
    for (let c = 0; c < 3; c += 1) {
      diff += Math.abs(pa[i + c] - pb[i + c]);
      sum += pa[i + c];
      squares += pa[i + c] * pa[i + c];
      n += 1;
    }
  }
  const mean = sum / n;
  return { diff: diff / n, std: Math.sqrt(squares / n - mean * mean) };
}
"""


def image_stats(page: Any, a: str, b: str, width: int = 64, height: int = 64) -> dict[str, float]:
    """`a` and `b`: JavaScript expressions for two drawables (img, video, canvas)."""
    stats: dict[str, float] = page.evaluate(
        f"([w, h]) => ({IMAGE_STATS_JS})([{a}, {b}, w, h])", [width, height]
    )
    return stats


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    server = Service(tmp_path_factory.mktemp("web"), {"max_jobs_per_client": "8"}).start()
    yield server
    server.stop()


@pytest.fixture
def page(browser: Any, service: Service) -> Iterator[Any]:
    """The page, loaded in a fresh context (empty localStorage), styles in."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    yield load_page(context, service.url, errors)
    context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


def load_page(context: Any, url: str, errors: list[str]) -> Any:
    """A new page of `context` at `url`, styles in; its uncaught errors go to `errors`."""
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    return page


def choose_photo_and_style(page: Any, photo: str, style_title: str) -> None:
    page.set_input_files("#content-input", str(example_path(photo)))
    page.locator(".style-card", has_text=style_title).click()
    expect(page.get_by_role("radio", name=re.compile(style_title))).to_be_checked()


def wait_for_result(page: Any, timeout_ms: int = 120_000) -> None:
    result = page.locator("#result-image")
    expect(result).to_be_visible(timeout=timeout_ms)
    page.wait_for_function(
        "() => { const i = document.querySelector('#result-image');"
        " return i.complete && i.naturalWidth > 0; }",
        timeout=timeout_ms,
    )


def history(page: Any) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(
        page.evaluate("() => localStorage.getItem('restyle.history.v1') || '[]'")
    )
    return entries


def test_page_is_served_cross_origin_isolated(service: Service) -> None:
    page = httpx.get(f"{service.url}/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/js/main.js">' in page.text
    assert page.headers["cross-origin-opener-policy"] == "same-origin"
    assert page.headers["cross-origin-embedder-policy"] == "require-corp"
    script = httpx.get(f"{service.url}/static/js/live.js")
    assert script.headers["content-type"].startswith("text/javascript")
    wasm = httpx.head(f"{service.url}/vendor/onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm")
    assert wasm.status_code == 200, "web/node_modules is missing: run `cd web && npm ci`"
    assert wasm.headers["content-type"] == "application/wasm"
    missing = httpx.get(f"{service.url}/static/../app.py")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_fast_job_shows_a_result_that_differs_from_the_photo(page: Any) -> None:
    choose_photo_and_style(page, "cat", "The Great Wave")
    page.get_by_role("button", name="Stylize").click()
    wait_for_result(page, 60_000)

    size = page.evaluate(
        "() => { const i = document.querySelector('#result-image');"
        " return [i.naturalWidth, i.naturalHeight]; }"
    )
    # Fast's size default is 0, the photo's own size: the field stays empty and sends nothing.
    expect(page.locator("#size")).to_have_value("")
    expect(page.locator("#size")).to_have_attribute("placeholder", "photo's size")
    with Image.open(example_path("cat")) as photo:
        assert max(size) == max(photo.size)
    before = "document.querySelector('#result-before')"
    same = image_stats(page, before, before)
    assert same["diff"] == 0  # the measure itself: a photo against itself
    stats = image_stats(page, "document.querySelector('#result-image')", before)
    assert stats["diff"] > 20, stats  # stylized, not the photo sent back
    assert stats["std"] > 10, stats  # and not a blank image

    # Download is the result itself, and the history remembers the job.
    href = page.evaluate("() => document.querySelector('#download').href")  # absolute
    assert "token=" in href
    download = page.request.get(href)
    assert download.status == 200 and download.headers["content-type"] == "image/png"
    [entry] = history(page)
    assert entry["status"] == "succeeded" and entry["style"] == "The Great Wave off Kanagawa"
    expect(page.locator("#history li")).to_have_count(1)
    expect(page.locator("#history li")).to_contain_text("succeeded")


def test_drop_and_paste_set_the_photo(page: Any) -> None:
    # Synthetic drop and paste events carrying real files: what the browser hands the page
    # when a file is dropped on the photo box or pasted (the OS side is not automated).
    photo = example_path("parrots").read_bytes()
    make_transfer = """([bytes, name]) => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([new Uint8Array(bytes)], name, { type: "image/jpeg" }));
        return transfer;
    }"""
    dropped = page.evaluate_handle(make_transfer, [list(photo), "dropped.jpg"])
    page.dispatch_event("#content-drop", "drop", {"dataTransfer": dropped})
    expect(page.locator("#content-hint")).to_contain_text("dropped.jpg")
    expect(page.locator("#content-preview")).to_be_visible()
    assert page.evaluate("() => document.querySelector('#content-input').files[0].size") == len(
        photo
    )
    pasted = page.evaluate_handle(make_transfer, [list(photo), "pasted.jpg"])
    page.evaluate(
        "(transfer) => document.dispatchEvent(new ClipboardEvent('paste',"
        " { clipboardData: transfer, bubbles: true, cancelable: true }))",
        pasted,
    )
    expect(page.locator("#content-hint")).to_contain_text("pasted.jpg")
    assert page.evaluate("() => document.querySelector('#content-input').files[0].name") == (
        "pasted.jpg"
    )


def test_strength_and_colour_sliders_reach_the_api(page: Any, service: Service) -> None:
    choose_photo_and_style(page, "lighthouse", "The Starry Night")
    strength = page.get_by_role("slider", name="Style strength")
    # The value beside the slider can be typed in: the slider follows.
    page.fill("#strength-value", "0.6")
    expect(strength).to_have_value("0.6")
    strength.focus()
    strength.press("Home")
    for _ in range(7):
        strength.press("ArrowRight")  # 7 steps of 0.05, as a keyboard user would
    expect(page.locator("#strength-value")).to_have_value("0.35")  # the value, shown beside
    colour = page.get_by_role("slider", name="Keep the photo's colours")
    colour.focus()
    colour.press("ArrowRight")
    expect(page.locator("#colour-out")).to_have_text("Luminance")
    page.fill("#size", "128")

    page.get_by_role("button", name="Stylize").click()
    wait_for_result(page, 60_000)

    # What the server parsed from the form, asked with the token this browser kept. (Chromium
    # does not hand a multipart body with files to Playwright, so the request is not read.)
    [entry] = history(page)
    status = httpx.get(
        f"{service.url}/api/jobs/{entry['id']}",
        headers={"Authorization": f"Bearer {entry['token']}"},
    ).json()
    assert status["options"]["strength"] == pytest.approx(0.35)
    assert status["options"]["preserve_color"] == "luminance"
    assert status["options"]["size"] == 128
    assert status["status"] == "succeeded"


def test_gatys_progress_bar_advances_with_previews(page: Any, service: Service) -> None:
    choose_photo_and_style(page, "parrots", "The Scream")
    page.check('input[name="method"][value="gatys"]')
    expect(page.get_by_label("Steps", exact=True)).to_be_visible()
    expect(page.locator("#size")).to_have_value("512")  # Gatys's default, from /api/engines
    page.fill("#size", "48")  # small: seconds on an idle 2-core CPU
    page.fill("#iterations", "16")
    page.fill('[data-option="seed"]', "7")  # a control the page made from the schema
    # Record every change of the progress bar and the preview, and whether the result was
    # already shown at that moment.
    page.evaluate(
        """() => {
          window.seen = [];
          const record = () => window.seen.push({
            value: document.querySelector('#progress').value,
            preview: document.querySelector('#preview').getAttribute('src') || '',
            resultShown: !document.querySelector('#result').hidden,
          });
          const observer = new MutationObserver(record);
          observer.observe(document.querySelector('#progress'), { attributes: true });
          observer.observe(document.querySelector('#preview'), { attributes: true });
        }"""
    )
    page.get_by_role("button", name="Stylize").click()
    expect(page.locator("#job")).to_be_visible()
    wait_for_result(page, 180_000)

    seen: list[dict[str, Any]] = page.evaluate("() => window.seen")
    before_end = [s["value"] for s in seen if not s["resultShown"]]
    running = [v for v in before_end if 0 < v < 1]
    assert len(set(running)) >= 2, f"the bar did not advance while the job ran: {before_end}"
    assert before_end == sorted(before_end), before_end
    assert any(s["preview"].startswith("data:image/jpeg;base64,") for s in seen), seen
    expect(page.locator("#preview")).to_be_visible()
    assert page.evaluate("() => document.querySelector('#progress').value") == 1
    expect(page.locator("#job-status")).to_contain_text("Done")

    [entry] = history(page)
    options = httpx.get(
        f"{service.url}/api/jobs/{entry['id']}",
        headers={"Authorization": f"Bearer {entry['token']}"},
    ).json()["options"]
    assert (options["size"], options["iterations"], options["seed"]) == (48, 16, 7)


def test_api_errors_are_shown_with_the_api_message(
    page: Any, service: Service, tmp_path: Path
) -> None:
    corrupt = tmp_path / "holiday.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG " * 8)
    api = httpx.post(
        f"{service.url}/api/jobs",
        files={"content": ("holiday.jpg", corrupt.read_bytes(), "image/jpeg")},
        data={"style": "starry-night", "method": "fast"},
    )
    assert api.status_code == 400 and api.json()["error"]["code"] == "invalid_image"
    message = api.json()["error"]["message"]

    page.set_input_files("#content-input", str(corrupt))
    page.get_by_role("button", name="Stylize").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(message)
    expect(alert).to_contain_text("invalid_image")
    assert history(page) == []  # no job was created
    expect(page.get_by_role("button", name="Stylize")).to_be_enabled()

    # A second kind: an option out of the server's limits, with the server's own wording.
    page.set_input_files("#content-input", str(example_path("cat")))
    page.fill("#size", "99999")
    page.get_by_role("button", name="Stylize").click()
    expect(alert).to_contain_text("size: 16..4096 for fast on this server, got 99999")
    expect(alert).not_to_contain_text(message)


def test_a_video_shows_frame_progress_then_plays_in_the_page(
    page: Any, service: Service, tmp_path: Path
) -> None:
    # Silent: whichever container this Chromium plays (H.264 or VP9), the clip fits in it.
    clip = make_clip(tmp_path / "walk.mp4", frames=24, audio=False, noise=4.0)
    page.set_input_files("#content-input", str(clip))
    expect(page.locator("#content-video")).to_be_visible()
    expect(page.locator('input[name="method"][value="gatys"]')).to_be_disabled()
    expect(page.locator("#video-limits")).to_contain_text("frames")
    page.locator(".style-card", has_text="The Starry Night").click()
    strength = page.locator('[data-option="temporal_strength"]')
    expect(strength).to_be_visible()  # the video option, from /api/engines
    strength.fill("0.4")
    expected = page.evaluate(
        """() => document.createElement("video")
          .canPlayType('video/mp4; codecs="avc1.42E01E"') ? "mp4" : "webm" """
    )
    expect(page.locator("#format")).to_have_value(expected)
    page.evaluate(
        """() => {
          window.seen = [];
          new MutationObserver(() => window.seen.push({
            status: document.querySelector('#job-status').textContent,
            preview: document.querySelector('#preview').getAttribute('src') || '',
          })).observe(document.querySelector('#job'), { subtree: true, attributes: true,
                                                        childList: true, characterData: true });
        }"""
    )
    page.get_by_role("button", name="Stylize").click()
    player = page.locator("#result-video")
    expect(player).to_be_visible(timeout=120_000)
    page.wait_for_function(
        "() => document.querySelector('#result-video').readyState >= 2", timeout=60_000
    )
    expect(page.locator("#compare")).to_be_hidden()
    seen: list[dict[str, str]] = page.evaluate("() => window.seen")
    # (The frames while it runs show in the cancel test: 24 tiny frames take a moment.)
    assert any(s["preview"].startswith("data:image/jpeg;base64,") for s in seen), seen

    # It plays: the position advances (muted, so no autoplay rule stands in the way).
    start = page.evaluate(
        "async () => { const v = document.querySelector('#result-video'); v.muted = true;"
        " await v.play(); return v.currentTime; }"
    )
    page.wait_for_function(
        f"() => document.querySelector('#result-video').currentTime > {start} + 0.1",
        timeout=10_000,
    )
    href = page.evaluate("() => document.querySelector('#download').href")
    assert "token=" in href
    assert page.evaluate("() => document.querySelector('#download').download").endswith(
        f".{expected}"
    )
    download = page.request.get(href)
    assert download.status == 200 and download.headers["content-type"] == f"video/{expected}"
    [entry] = history(page)
    assert entry["kind"] == "video" and entry["status"] == "succeeded"
    status = httpx.get(
        f"{service.url}/api/jobs/{entry['id']}",
        headers={"Authorization": f"Bearer {entry['token']}"},
    ).json()
    assert status["options"]["temporal_strength"] == pytest.approx(0.4)
    assert status["frames"] == {"done": 24, "total": 24}


def test_a_browser_without_h264_asks_for_webm(page: Any, tmp_path: Path) -> None:
    # As an open-source Chromium build without H.264 answers.
    page.evaluate(
        """() => {
          const original = HTMLMediaElement.prototype.canPlayType;
          HTMLMediaElement.prototype.canPlayType = function (type) {
            return type.startsWith("video/mp4") ? "" : original.call(this, type);
          };
        }"""
    )
    page.set_input_files("#content-input", str(make_clip(tmp_path / "c.mp4", frames=2)))
    expect(page.locator("#format")).to_have_value("webm")
    page.set_input_files("#content-input", str(example_path("cat")))
    expect(page.locator("#format")).to_have_value("png")  # back to the image formats


def test_a_video_job_can_be_cancelled_from_the_page(page: Any, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "long.mp4", frames=500, audio=False, width=256, height=192)
    page.set_input_files("#content-input", str(clip))
    page.get_by_role("button", name="Stylize").click()
    expect(page.locator("#job-status")).to_have_text(
        re.compile(r"Running: frame \d+ of 500 \(\d+%\)"), timeout=60_000
    )
    expect(page.locator("#preview")).to_be_visible()  # the latest frame
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#job-status")).to_have_text("Cancelled", timeout=30_000)
    expect(page.get_by_role("button", name="Stylize")).to_be_enabled()
    expect(page.locator("#result")).to_be_hidden()
    [entry] = history(page)
    assert entry["status"] == "cancelled"


def test_a_cancelled_gatys_job_says_cancelled(page: Any, service: Service) -> None:
    choose_photo_and_style(page, "parrots", "The Scream")
    page.check('input[name="method"][value="gatys"]')
    page.fill("#size", "48")
    page.fill("#iterations", "2000")  # the server's most: minutes of work, cancelled long before
    page.get_by_role("button", name="Stylize").click()
    status = page.locator("#job-status")
    expect(status).to_have_text(re.compile(r"Running: step \d+/\d+"), timeout=120_000)
    expect(page.locator("#job-title")).to_have_text("Progress: The Scream, Best quality")
    # Every text the status line shows from the click on.
    page.evaluate(
        """() => {
          window.seen = [];
          new MutationObserver(() => window.seen.push(
            document.querySelector('#job-status').textContent,
          )).observe(document.querySelector('#job-status'), { childList: true,
                                                             characterData: true,
                                                             subtree: true });
        }"""
    )
    page.locator("#cancel").click()
    expect(status).to_have_text("Cancelled", timeout=30_000)
    expect(page.get_by_role("button", name="Stylize")).to_be_enabled()
    expect(page.locator("#cancel")).to_be_hidden()
    page.wait_for_timeout(1500)  # the worker's last progress report comes after the cancel
    expect(status).to_have_text("Cancelled")
    seen: list[str] = page.evaluate("() => window.seen")
    after = seen[seen.index("Cancelled") :]
    assert set(after) == {"Cancelled"}, seen
    expect(page.get_by_role("alert")).to_contain_text("The job was cancelled.")
    [entry] = history(page)
    assert entry["status"] == "cancelled"
    expect(page.locator("#history li")).to_contain_text("cancelled")
    job = httpx.get(
        f"{service.url}/api/jobs/{entry['id']}",
        headers={"Authorization": f"Bearer {entry['token']}"},
    ).json()
    assert job["status"] == "cancelled"


def start_gatys(page: Any, size: str, iterations: str) -> dict[str, Any]:
    """Submits a Gatys job from the page's form (the parrots, The Scream); its POST's answer."""
    choose_photo_and_style(page, "parrots", "The Scream")
    page.check('input[name="method"][value="gatys"]')
    page.fill("#size", size)
    page.fill("#iterations", iterations)
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/api/jobs")
    ) as posted:
        page.get_by_role("button", name="Stylize").click()
    assert posted.value.status == 202, posted.value.text()
    job: dict[str, Any] = posted.value.json()
    return job


def job_status(service: Service, job: dict[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = httpx.get(
        f"{service.url}/api/jobs/{job['id']}",
        headers={"Authorization": f"Bearer {job['token']}"},
    ).json()
    return status


def test_a_quick_job_in_a_second_tab_finishes_while_a_heavy_one_runs_and_a_queued_card_shows_its_place(  # noqa: E501
    page: Any, service: Service
) -> None:
    # Tab 1: a Gatys job of minutes (the heavy lane's one worker is busy for the whole test:
    # 2000 steps at 64 px take 5-10 min on a 2-core CPU).
    heavy = start_gatys(page, "64", "2000")
    jobs = [heavy]
    errors: list[str] = []
    second = load_page(page.context, service.url, errors)  # tab 2: the same browser
    try:
        expect(page.locator("#job-status")).to_have_text(re.compile(r"^Running: "), timeout=120_000)
        running = job_status(service, heavy)
        assert (running["status"], running["lane"]) == ("running", "heavy"), running

        # Tab 2: a fast stylization (the default engine) does not wait for it.
        choose_photo_and_style(second, "cat", "The Great Wave")
        with second.expect_response(
            lambda r: r.request.method == "POST" and r.url.endswith("/api/jobs")
        ) as posted:
            second.get_by_role("button", name="Stylize").click()
        quick = posted.value.json()
        wait_for_result(second, 60_000)
        expect(second.locator("#job-status")).to_contain_text("Done")
        done = job_status(service, quick)
        assert (done["status"], done["lane"]) == ("succeeded", "interactive"), done
        assert job_status(service, heavy)["status"] == "running"
        expect(page.locator("#job-status")).to_have_text(re.compile(r"^Running: "))

        # Tab 2 again: a short Gatys job waits behind tab 1's, and its card says where it
        # stands: its expected finish, tab 1's job's time left and its own ("about 20 min"; the
        # page words 90 min and more in hours, as "1 h 30 min").
        waiting = start_gatys(second, "64", "50")
        jobs.append(waiting)
        expect(second.locator("#job-status")).to_have_text(
            re.compile(r"^1st in line, (about \d+ (s|min|h)( \d+ min)?|waiting for a worker…)$"),
            timeout=30_000,
        )
        queued = job_status(service, waiting)
        assert queued["status"] == "queued", queued
        assert queued["queue"]["lane"] == "heavy" and queued["queue"]["position"] == 1, queued
        assert job_status(service, heavy)["status"] == "running"

        # Both cancelled from their cards: the queued one, then the running one.
        second.locator("#cancel").click()
        expect(second.locator("#job-status")).to_have_text("Cancelled", timeout=30_000)
        page.locator("#cancel").click()
        expect(page.locator("#job-status")).to_have_text("Cancelled", timeout=30_000)
        assert [job_status(service, job)["status"] for job in jobs] == ["cancelled"] * 2
    finally:  # the module's service is left idle, whatever failed
        for job in jobs:
            httpx.delete(
                f"{service.url}/api/jobs/{job['id']}",
                headers={"Authorization": f"Bearer {job['token']}"},
            )
    assert errors == [], f"uncaught errors in the second tab: {errors}"


def is_estimate(request: Any) -> bool:
    return request.method == "POST" and request.url.endswith("/api/estimate")


def answered(condition: Any = is_estimate) -> Any:
    """A response's test: one to an estimate request that meets `condition`."""
    return lambda response: is_estimate(response.request) and condition(response.request)


def test_the_optimising_engine_shows_its_expected_time_beside_stylize(
    page: Any, service: Service
) -> None:
    engines = httpx.get(f"{service.url}/api/engines").json()["engines"]
    optimising = next(e for e in engines if e["capabilities"]["steps"])
    other = next(e for e in engines if not e["capabilities"]["steps"])
    line = page.locator("#estimate")
    radio = page.locator(f'input[name="method"][value="{optimising["name"]}"]')

    def shown_for(response: Any) -> dict[str, Any]:
        """The line once it shows the server's answer to the page's request (asked again here:
        the probe of the cost model is timed once per process, so the answer is the same)."""
        body = response.request.post_data_json
        answer: dict[str, Any] = httpx.post(f"{service.url}/api/estimate", json=body).json()
        expect(line).to_be_visible()
        expect(line).to_have_text(
            f"Expected time: {answer['text']} on this server's {answer['device']}"
        )
        return answer

    page.check(f'input[name="method"][value="{other["name"]}"]')
    expect(line).to_be_hidden()
    # The optimising engine: its options as the form has them, a 512 × 512 photo before any.
    with page.expect_response(answered()) as asked:
        radio.check()
    body = asked.value.request.post_data_json
    assert body == {
        "method": optimising["name"],
        "width": 512,
        "height": 512,
        "options": {"size": "512", "strength": "1", "preserve_color": "none"},
    }
    at_512 = shown_for(asked.value)
    expect(line).to_have_text(re.compile(r"^Expected time: about \d+ (s|min|h)"))
    assert at_512["seconds"] > 0

    # A larger output: asked again once typing stops, and expected to take longer.
    with page.expect_response(answered()) as asked:
        page.fill("#size", "1024")
    assert asked.value.request.post_data_json["options"]["size"] == "1024"
    assert shown_for(asked.value)["seconds"] > at_512["seconds"]

    # A photo: its own pixel size (the cat is 451 × 300).
    with page.expect_response(answered(lambda r: r.post_data_json["width"] != 512)) as asked:
        choose_photo_and_style(page, "cat", "The Scream")
    photo = asked.value.request.post_data_json
    assert (photo["width"], photo["height"]) == (451, 300)
    shown_for(asked.value)

    # The time limit is a number of seconds (0: none), and caps the estimate.
    limit = page.get_by_label("Time limit (s)", exact=True)
    expect(limit).to_have_attribute("type", "number")
    expect(limit).to_have_attribute("placeholder", "default 0")
    expect(limit).to_have_attribute("max", "21600")
    with page.expect_response(answered()) as asked:
        limit.fill("5")
    assert asked.value.request.post_data_json["options"]["time_limit_s"] == "5"
    assert shown_for(asked.value)["text"] == "about 5 s"

    # A value the server refuses hides the line quietly: no error for a hint.
    page.fill("#size", "99999")
    expect(line).to_be_hidden()
    expect(page.locator("#error")).to_be_hidden()
    page.fill("#size", "48")
    expect(line).to_have_text(re.compile("^Expected time: about 5 s"))

    # Another engine: no line.
    page.check(f'input[name="method"][value="{other["name"]}"]')
    expect(line).to_be_hidden()
    page.wait_for_timeout(600)  # past the debounce: nothing brings it back
    expect(line).to_be_hidden()

    # The submit sends the time limit with the rest of the options.
    radio.check()
    page.fill("#iterations", "2")
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/api/jobs")):
        page.get_by_role("button", name="Stylize").click()
    expect(page.locator("#job")).to_be_visible()
    [entry] = history(page)
    job = httpx.get(
        f"{service.url}/api/jobs/{entry['id']}",
        headers={"Authorization": f"Bearer {entry['token']}"},
    ).json()
    assert (job["options"]["time_limit_s"], job["options"]["iterations"]) == (5, 2)
    assert job["options"]["size"] == 48
    expect(page.get_by_role("button", name="Stylize")).to_be_enabled(timeout=180_000)  # ended


# What the page shows as options: each visible control marked data-option.
VISIBLE_OPTIONS_JS = """
() => [...document.querySelectorAll("[data-option]")]
  .filter((element) => element.checkVisibility())
  .map((element) => ({
    name: element.dataset.option,
    tag: element.tagName.toLowerCase(),
    type: element.type,
    min: element.getAttribute("min"),
    max: element.getAttribute("max"),
    choices: element.dataset.choices ? JSON.parse(element.dataset.choices) : null,
    selectValues: element.tagName === "SELECT"
      ? [...element.options].map((o) => o.value).filter((v) => v !== "") : null,
    label: element.labels && element.labels.length ? element.labels[0].textContent : "",
    describedBy: (element.getAttribute("aria-describedby") || "").split(" ").filter(Boolean),
    steppers: [...element.parentElement.querySelectorAll(".step-button")].length,
    step: element.getAttribute("step"),
  }))
"""


def plain_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A property's schema without its "or null" branch."""
    for branch in schema.get("anyOf", []):
        if branch.get("type") != "null":
            return {**branch, **{k: v for k, v in schema.items() if k != "anyOf"}}
    return schema


def expect_controls_of(page: Any, properties: dict[str, Any], where: str) -> None:
    """The visible option controls are exactly `properties`: each labelled with its schema's
    title (40 characters at most), its help (the description) shown by its "?" button and
    describing the control, numbers as sliders (small ranges) or steppers, with the schema's
    limits, and an enum's choices in the schema's order."""
    controls = page.evaluate(VISIBLE_OPTIONS_JS)
    names = [control["name"] for control in controls]
    assert sorted(names) == sorted(properties), where
    assert len(names) == len(set(names)), f"{where}: a control twice: {names}"
    for control in controls:
        schema = plain_schema(properties[control["name"]])
        at = f"{where}.{control['name']}"
        label = control["label"].strip()
        assert 0 < len(label) <= 40 and label == schema["title"], f"{at}: label {label!r}"
        # The help: hidden, then shown by the "?" beside the label (a button, so Tab reaches
        # it), and the control's description whether shown or not.
        field = page.locator(f'.field:has([data-option="{control["name"]}"])')
        help_text = field.locator("p.help")
        toggle = field.get_by_role("button", name=f"About {label}")
        expect(help_text).to_be_hidden()
        expect(toggle).to_have_attribute("aria-expanded", "false")
        toggle.focus()
        toggle.press("Enter")
        expect(help_text).to_be_visible()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        assert help_text.text_content() == schema["description"], at
        assert help_text.get_attribute("id") in control["describedBy"], at
        toggle.click()
        expect(help_text).to_be_hidden()
        if "enum" in schema:
            assert control["choices"] == schema["enum"], at
            if control["tag"] == "select":
                assert control["selectValues"] == [str(v) for v in schema["enum"]], at
        elif schema["type"] in ("integer", "number"):
            for attribute, key in (("min", "minimum"), ("max", "maximum")):
                expected = schema.get(key)
                actual = control[attribute]
                assert (None if actual is None else float(actual)) == expected, (
                    f"{at}: {attribute}={actual}, schema {key}={expected}"
                )
            bounded = "minimum" in schema and "maximum" in schema
            span = schema["maximum"] - schema["minimum"] if bounded else math.inf
            if span <= (100 if schema["type"] == "integer" else 50):
                # A slider, with its value beside it, on stops that hold the default.
                assert control["type"] == "range", at
                value = field.locator("input.value")
                expect(value).to_be_visible()
                step = float(control["step"])
                assert span / step >= 15 or schema["type"] == "integer", at
                if isinstance(schema.get("default"), float | int):
                    stops = (schema["default"] - schema["minimum"]) / step
                    assert abs(stops - round(stops)) < 1e-6, f"{at}: step {step}"
            else:
                # A stepper: a number field between − and +, its range written beside it.
                assert control["type"] == "number" and control["steppers"] == 2, at
                expect(field.locator(".range")).to_contain_text(" to ")
        elif schema["type"] == "boolean":
            assert control["type"] == "checkbox", at


def test_every_engine_option_has_a_control_with_the_api_limits(
    page: Any, service: Service, tmp_path: Path
) -> None:
    engines = httpx.get(f"{service.url}/api/engines").json()["engines"]
    radios = page.locator('input[name="method"]')
    assert [radios.nth(i).get_attribute("value") for i in range(radios.count())] == [
        engine["name"] for engine in engines
    ]
    expect(radios.first).to_be_checked()  # the server's default engine
    # Each zoo card says what the style runs, in the API's words (never "provisional").
    for style in httpx.get(f"{service.url}/api/styles").json()["styles"]:
        card = page.locator("#gallery .style-card", has_text=style["title"]).first
        expect(card.locator(".kind")).to_have_text(style["network"])
    expect(page.locator("#gallery")).not_to_contain_text("provisional")
    # A gallery style is chosen (the first, by default): every engine can be selected.
    for engine in engines:
        radio = page.locator(f'input[name="method"][value="{engine["name"]}"]')
        radio.check()
        expect(radio.locator("xpath=..")).to_contain_text(engine["title"])
        expect_controls_of(page, engine["options"]["properties"], engine["name"])

    # A video: the engines that take one show their video options too.
    page.set_input_files("#content-input", str(make_clip(tmp_path / "c.mp4", frames=2)))
    expect(page.locator("#content-video")).to_be_visible()
    for engine in engines:
        if engine["video_options"] is None:
            continue
        page.check(f'input[name="method"][value="{engine["name"]}"]')
        properties = {**engine["options"]["properties"], **engine["video_options"]["properties"]}
        size = plain_schema(properties["size"])  # bounded by the server's video size
        properties["size"] = {
            **size,
            "maximum": min(size["maximum"], engine["limits"]["max_video_size"]),
        }
        expect_controls_of(page, properties, f"{engine['name']} (video)")
    page.set_input_files("#content-input", str(example_path("cat")))

    # The user's own painting: engines that run trained styles only are switched off.
    page.set_input_files("#style-input", str(example_path("great_wave")))
    for engine in engines:
        radio = page.locator(f'input[name="method"][value="{engine["name"]}"]')
        if engine["styles"] == "trained":
            expect(radio).to_be_disabled()
        else:
            expect(radio).to_be_enabled()
    checked = page.locator('input[name="method"]:checked').get_attribute("value")
    assert next(e for e in engines if e["name"] == checked)["styles"] == "painting"


def run_live_camera(page: Any, frames: int = 3) -> tuple[float, dict[str, float]]:
    """Start the camera; once `frames` frames are drawn, the fps shown and the stylized frame
    against the raw camera frame, both at 160×120 (the fake camera is 4:3, so no crop: a filter
    that passed frames through would differ by a few levels)."""
    page.get_by_role("button", name="Start the camera").click()
    page.wait_for_function(
        f"() => Number(document.querySelector('#live-canvas').dataset.frames) >= {frames}"
        " || !document.querySelector('#live-error').hidden",
        timeout=120_000,
    )
    expect(page.locator("#live-error")).to_be_hidden()
    stats = image_stats(
        page,
        "document.querySelector('#live-canvas')",
        "document.querySelector('#live-video')",
        160,
        120,
    )
    shown = page.text_content("#fps") or ""
    fps = float(shown) if re.fullmatch(r"\d+(\.\d+)?", shown) else 0.0  # "–" before a rate
    return fps, stats


def test_live_mode_stylizes_camera_frames(page: Any) -> None:
    page.get_by_role("tab", name="Live camera").click()
    page.select_option("#live-style", "great-wave")
    page.select_option("#live-size", "160x120")
    fps, stats = run_live_camera(page)
    assert fps > 0
    assert re.match(r"(WASM|WebGPU)", page.text_content("#live-backend") or "")
    canvas = page.evaluate(
        "() => [document.querySelector('#live-canvas').width,"
        " document.querySelector('#live-canvas').height]"
    )
    assert canvas == [160, 120]
    assert stats["diff"] > 20, stats
    assert stats["std"] > 5, stats  # not a blank canvas

    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#fps")).to_have_text("–")
    assert page.evaluate("() => document.querySelector('#live-video').srcObject") is None


def test_live_mode_offers_its_list_of_sizes_and_draws_an_upscaled_one(page: Any) -> None:
    """The size menu is live.js's FRAME_SIZES, in its order, 320 × 240 upscaled from 160 × 120
    chosen; that size draws stylized 320 × 240 frames from the 160 × 120 network."""
    page.get_by_role("tab", name="Live camera").click()
    sizes = page.eval_on_selector(
        "#live-size", "s => [...s.options].map(o => [o.value, o.textContent, o.selected])"
    )
    offered = page.evaluate(
        "async () => (await import('/static/js/live.js')).FRAME_SIZES"
        ".map(s => [s.id, s.network[0] * s.factor, s.network[1] * s.factor])"
    )
    assert [value for value, _, _ in sizes] == [size_id for size_id, _, _ in offered]
    assert [value for value, _, selected in sizes if selected] == ["320x240-from-160x120"]
    assert "320 × 240, upscaled from 160 × 120" in [label for _, label, _ in sizes]
    page.select_option("#live-style", "great-wave")
    page.select_option("#live-size", "320x240-from-160x120")
    fps, stats = run_live_camera(page)
    assert fps > 0
    assert stats["diff"] > 20 and stats["std"] > 5, stats
    canvas = page.evaluate(
        "() => [document.querySelector('#live-canvas').width,"
        " document.querySelector('#live-canvas').height]"
    )
    assert canvas == [320, 240]
    page.get_by_role("button", name="Stop").click()


# Guided against plain upscaling, in the page: the parrots photo at 320 × 240 stands for the
# camera, the style's network (WASM) runs on its 160 × 120 version (upscale.js's `prepare`), and
# its output is upscaled guided (upscale.js) and plainly (the canvas's smoothing, "high"). Returned:
# how well each one's edges (luminance differences between neighbours) correlate with the
# photo's, and the mean absolute difference of the two upscales (0-255).
UPSCALE_EDGES_JS = """
async ([photoUrl, modelUrl]) => {
  const ort = await import("onnxruntime-web");
  const { GuidedUpscaler } = await import("/static/js/upscale.js");
  const context = (width, height) => {
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    return canvas.getContext("2d", { willReadFrequently: true });
  };
  const image = new Image();
  image.src = photoUrl;
  await image.decode();
  const fine = context(320, 240);
  fine.drawImage(image, 0, 0, 320, 240);
  const pixels = fine.getImageData(0, 0, 320, 240).data;
  const upscaler = new GuidedUpscaler(160, 120, 2);
  const input = new Float32Array(3 * 160 * 120);
  upscaler.prepare(pixels, input);
  const bytes = new Uint8Array(await (await fetch(modelUrl)).arrayBuffer());
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  const result = await session.run({
    [session.inputNames[0]]: new ort.Tensor("float32", input, [1, 3, 120, 160]),
  });
  const styled = result[session.outputNames[0]].data;
  await session.release();
  const guided = new Uint8ClampedArray(320 * 240 * 4);
  upscaler.upscale(styled, guided);
  const small = context(160, 120);
  const frame = new ImageData(160, 120);
  for (let i = 0; i < 160 * 120; i += 1) {
    for (let c = 0; c < 3; c += 1) frame.data[4 * i + c] = styled[c * 160 * 120 + i] * 255;
    frame.data[4 * i + 3] = 255;
  }
  small.putImageData(frame, 0, 0);
  const plain = context(320, 240);
  plain.imageSmoothingQuality = "high";
  plain.drawImage(small.canvas, 0, 0, 320, 240);
  const bilinear = plain.getImageData(0, 0, 320, 240).data;
  const edges = (rgba) => {
    const luma = (i) => 0.299 * rgba[i] + 0.587 * rgba[i + 1] + 0.114 * rgba[i + 2];
    const out = [];
    for (let y = 0; y < 239; y += 1) {
      for (let x = 0; x < 319; x += 1) {
        const i = 4 * (y * 320 + x);
        out.push(Math.abs(luma(i + 4) - luma(i)) + Math.abs(luma(i + 4 * 320) - luma(i)));
      }
    }
    return out;
  };
  const correlation = (a, b) => {
    const mean = (v) => v.reduce((s, x) => s + x, 0) / v.length;
    const ma = mean(a);
    const mb = mean(b);
    let ab = 0, aa = 0, bb = 0;
    for (let i = 0; i < a.length; i += 1) {
      ab += (a[i] - ma) * (b[i] - mb);
      aa += (a[i] - ma) ** 2;
      bb += (b[i] - mb) ** 2;
    }
    return ab / Math.sqrt(aa * bb);
  };
  const camera = edges(pixels);
  let diff = 0;
  for (let i = 0; i < guided.length; i += 4) {
    for (let c = 0; c < 3; c += 1) diff += Math.abs(guided[i + c] - bilinear[i + c]);
  }
  return {
    guided: correlation(edges(guided), camera),
    plain: correlation(edges(bilinear), camera),
    diff: diff / (320 * 240 * 3),
  };
}
"""


def test_the_guided_upscale_brings_back_the_cameras_edges(page: Any, service: Service) -> None:
    photo = (
        "data:image/jpeg;base64," + base64.b64encode(example_path("parrots").read_bytes()).decode()
    )
    model = f"{service.url}/api/styles/great-wave/model.onnx"
    found = page.evaluate(UPSCALE_EDGES_JS, [photo, model])
    # The guide puts the camera's edges back (measured: 0.58 against 0.34 for the plain upscale;
    # 0.58-0.68 against 0.31-0.39 over three styles and two photos).
    assert found["guided"] > found["plain"] + 0.15, found
    # And little else: the two upscales differ by 2.8 levels on average (a style's own texture,
    # away from the camera's edges, is kept as the network drew it).
    assert found["diff"] < 8, found


@pytest.fixture(scope="module")
def webgpu_browser(browser: Any) -> Iterator[Any]:
    """Headless Chromium with WebGPU switched on and the fake camera. Without a GPU, Chromium's
    own SwiftShader (a Vulkan implementation on the CPU, shipped with Debian's chromium) gives
    the WebGPU adapter; no system Vulkan driver is needed."""
    webgpu = browser.browser_type.launch(
        executable_path=shutil.which("chromium"),
        args=[
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            "--enable-unsafe-webgpu",
            "--use-webgpu-adapter=swiftshader",
        ],
    )
    yield webgpu
    webgpu.close()


# The same network on both backends of onnxruntime-web, on the same seeded input: the largest
# and the mean absolute difference of the outputs.
BACKEND_PARITY_JS = """
async (modelUrl) => {
  const ort = await import("onnxruntime-web");
  const bytes = new Uint8Array(await (await fetch(modelUrl)).arrayBuffer());
  const [width, height] = [64, 48];
  const data = new Float32Array(3 * width * height);
  let seed = 7;
  for (let i = 0; i < data.length; i += 1) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    data[i] = seed / 2147483648;
  }
  const outputs = [];
  for (const provider of ["webgpu", "wasm"]) {
    const session = await ort.InferenceSession.create(bytes.slice(), {
      executionProviders: [provider],
    });
    const input = new ort.Tensor("float32", data, [1, 3, height, width]);
    const result = await session.run({ [session.inputNames[0]]: input });
    outputs.push(result[session.outputNames[0]].data);
    await session.release();
  }
  let max = 0, sum = 0;
  for (let i = 0; i < outputs[0].length; i += 1) {
    const d = Math.abs(outputs[0][i] - outputs[1][i]);
    max = Math.max(max, d);
    sum += d;
  }
  return { max, mean: sum / outputs[0].length, n: outputs[0].length };
}
"""


def test_live_mode_on_webgpu(webgpu_browser: Any, service: Service) -> None:
    """With a WebGPU adapter the page runs the network on WebGPU, says so, and draws a
    stylized frame (an upscaled size: the guided upscale after a WebGPU run); the network's
    WebGPU output equals its WASM output within float32 rounding."""
    context = webgpu_browser.new_context(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page = load_page(context, service.url, errors)
    adapter = page.evaluate(
        "async () => { const a = await navigator.gpu?.requestAdapter();"
        " return a ? a.info.architecture || a.info.vendor || 'unnamed' : null; }"
    )
    if adapter is None:
        context.close()
        pytest.skip("this Chromium gives no WebGPU adapter, even with --enable-unsafe-webgpu")
    # Before the camera starts: onnxruntime-web's WebGPU backend runs one network at a time, and
    # a stop leaves the frame in flight to finish.
    parity = page.evaluate(BACKEND_PARITY_JS, f"{service.url}/api/styles/great-wave/model.onnx")
    assert parity["n"] == 3 * 64 * 48
    assert parity["max"] < 1e-3, parity  # measured: 3e-5 on SwiftShader
    page.get_by_role("tab", name="Live camera").click()
    page.select_option("#live-style", "great-wave")
    page.select_option("#live-size", "256x192-from-128x96")
    # One frame is enough to judge (SwiftShader computes on the CPU: seconds per frame).
    _, stats = run_live_camera(page, frames=1)
    expect(page.locator("#live-backend")).to_have_text("WebGPU")
    assert stats["diff"] > 20, stats
    assert stats["std"] > 5, stats
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#fps")).to_have_text("–")
    context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


# The page's camera, watched: every stream it got (`window.cameraStreams`), and, while
# `window.holdCamera` is set, an answer held back until `window.letCameraIn()` (a slow
# permission prompt). Also a count of the networks onnxruntime-web has made
# (`window.networksMade`), once it is loaded: when a start's last wait is over.
WATCH_CAMERA_JS = """
() => {
  window.cameraStreams = [];
  window.holdCamera = false;
  const getUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const stream = await getUserMedia(constraints);
    window.cameraStreams.push(stream);
    if (window.holdCamera) await new Promise((resolve) => { window.letCameraIn = resolve; });
    return stream;
  };
}
"""
COUNT_NETWORKS_JS = """
async () => {
  const { InferenceSession } = await import("onnxruntime-web");
  const create = InferenceSession.create;
  window.networksMade = 0;
  InferenceSession.create = async (...args) => {
    const session = await create.apply(InferenceSession, args);
    window.networksMade += 1;
    return session;
  };
}
"""
TRACKS_JS = "() => window.cameraStreams.map((s) => s.getTracks().map((t) => t.readyState))"


def test_a_stop_while_the_live_camera_starts_wins(page: Any) -> None:
    """The tab left while the network downloads, Stop pressed while the camera is asked for: the
    start gives up when its wait is over, the camera released, Start back, no frames drawn. A
    start after them runs as usual."""
    page.evaluate(WATCH_CAMERA_JS)
    start = page.get_by_role("button", name="Start the camera")
    stop = page.get_by_role("button", name="Stop")
    status = page.locator("#live-status")
    canvas = page.locator("#live-canvas")

    def stopped_page() -> None:
        expect(start).to_be_visible()
        expect(start).to_be_enabled()
        expect(stop).to_be_hidden()
        expect(status).to_have_text("")
        expect(page.locator("#live-error")).to_be_hidden()
        expect(page.locator("#fps")).to_have_text("–")
        assert canvas.get_attribute("data-frames") is None  # not a frame drawn
        assert page.evaluate("() => document.querySelector('#live-video').srcObject") is None

    # The tab is left while the style's network downloads (its answer held back until then).
    held: list[Any] = []

    def hold(route: Any) -> None:
        held.append(route)

    model = "**/api/styles/great-wave/model.onnx"
    page.route(model, hold)
    page.get_by_role("tab", name="Live camera").click()
    page.select_option("#live-style", "great-wave")
    page.select_option("#live-size", "160x120")
    start.click()
    expect(stop).to_be_visible()  # a start can be stopped while it waits
    expect(status).to_have_text("Downloading the network…", timeout=60_000)
    for _ in range(200):
        if held:
            break
        page.wait_for_timeout(50)
    assert len(held) == 1
    assert page.evaluate(TRACKS_JS) == [["live"]]
    page.get_by_role("tab", name="Photo").click()
    assert page.evaluate(TRACKS_JS) == [["ended"]]
    page.evaluate(COUNT_NETWORKS_JS)  # onnxruntime-web is loaded: the download came after it
    held[0].continue_()
    page.wait_for_function("() => window.networksMade >= 1", timeout=60_000)
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    page.unroute(model)
    page.get_by_role("tab", name="Live camera").click()
    stopped_page()
    assert page.evaluate(TRACKS_JS) == [["ended"]]

    # Stop is pressed while the camera is asked for; the camera answers after it.
    page.evaluate("() => { window.holdCamera = true; }")
    start.click()
    page.wait_for_function("() => window.letCameraIn !== undefined")
    expect(status).to_have_text("Starting the camera…")
    stop.click()
    stopped_page()
    page.evaluate("() => { window.holdCamera = false; window.letCameraIn(); }")
    page.wait_for_function(
        "() => window.cameraStreams[1].getTracks().every((t) => t.readyState === 'ended')"
    )
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    stopped_page()
    assert page.evaluate(TRACKS_JS) == [["ended"], ["ended"]]

    # A start after those runs (its network is the one the first start downloaded), and a stop
    # while it runs stops its frames.
    fps, _ = run_live_camera(page)
    assert fps > 0
    assert page.evaluate(TRACKS_JS) == [["ended"], ["ended"], ["live"]]
    stop.click()
    frames = canvas.get_attribute("data-frames")
    page.wait_for_timeout(1000)
    assert canvas.get_attribute("data-frames") == frames
    expect(start).to_be_visible()
    assert page.evaluate(TRACKS_JS) == [["ended"], ["ended"], ["ended"]]


def test_a_later_live_style_wins_over_a_slow_download(page: Any) -> None:
    """While the camera runs, a style is picked and, before its network came, another whose
    network is loaded: the first download is aborted and the camera keeps painting with the
    last choice (before, the slow network took over when it came, whatever the list said)."""
    status = page.locator("#live-status")
    page.get_by_role("tab", name="Live camera").click()
    page.select_option("#live-style", "great-wave")
    page.select_option("#live-size", "160x120")
    fps, _ = run_live_camera(page)
    assert fps > 0
    page.evaluate(COUNT_NETWORKS_JS)
    held: list[Any] = []
    failed: list[str] = []
    slow = "**/api/styles/the-scream/model.onnx"

    def hold(route: Any) -> None:
        held.append(route)

    page.route(slow, hold)
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.select_option("#live-style", "the-scream")
    expect(status).to_have_text("Downloading the network…")
    for _ in range(200):
        if held:
            break
        page.wait_for_timeout(50)
    assert len(held) == 1
    page.select_option("#live-style", "great-wave")  # its network is loaded
    expect(status).to_have_text("Running")
    for _ in range(200):
        if failed:
            break
        page.wait_for_timeout(50)
    assert [url for url in failed if url.endswith("/api/styles/the-scream/model.onnx")], failed
    with contextlib.suppress(Exception):  # the page has given up on it
        held[0].continue_()
    page.unroute(slow)
    page.wait_for_timeout(2000)
    assert page.evaluate("() => window.networksMade") == 0
    expect(page.locator("#live-error")).to_be_hidden()
    expect(status).to_have_text("Running")
    assert page.input_value("#live-style") == "great-wave"
    page.get_by_role("button", name="Stop").click()


def test_live_mode_without_onnxruntime_web_says_so(page: Any) -> None:
    # A server without web/node_modules answers 404 under /vendor/ (the mount is absent).
    page.route(
        "**/vendor/onnxruntime-web/**",
        lambda route: route.fulfill(
            status=404, content_type="application/json", body='{"error": {"code": "not_found"}}'
        ),
    )
    page.get_by_role("tab", name="Live camera").click()
    page.get_by_role("button", name="Start the camera").click()
    expect(page.locator("#live-error")).to_contain_text("onnxruntime-web")
    expect(page.locator("#live-error")).to_contain_text("npm ci")
    expect(page.get_by_role("button", name="Start the camera")).to_be_visible()
    assert page.evaluate("() => document.querySelector('#live-video').srcObject") is None


@pytest.fixture(scope="module")
def service_without_arbitrary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """`restyle serve` from an installation that ships neither of the arbitrary engine's
    networks (MicroAST, the MetaNet): a copy of the package, first on PYTHONPATH, whose zoo
    registry lists neither and which lacks their files, as a slimmed install would."""
    root = tmp_path_factory.mktemp("no-arbitrary")
    package = root / "restyle"
    shutil.copytree(
        Path(restyle.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__")
    )
    registry_file = package / "zoo" / "registry.json"
    registry = json.loads(registry_file.read_text(encoding="utf-8"))
    for network in ("microast", "arbitrary"):
        (package / "zoo" / registry.pop(network)["file"]).unlink()
    registry_file.write_text(json.dumps(registry), encoding="utf-8")
    with pytest.MonkeyPatch.context() as env:
        env.setenv(
            "PYTHONPATH", os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
        )
        server = Service(root / "data").start()
    yield server
    server.stop()


def test_live_painting_without_an_arbitrary_engine_shows_the_api_message(
    browser: Any, service_without_arbitrary: Service
) -> None:
    service = service_without_arbitrary
    engines = [e["name"] for e in httpx.get(f"{service.url}/api/engines").json()["engines"]]
    assert engines == ["fast", "gatys"]  # the copy runs: the arbitrary engine is not installed
    painting = example_path("starry_night")
    api = httpx.post(
        f"{service.url}/api/live/model.onnx",
        files={"style_image": ("starry.jpg", painting.read_bytes(), "image/jpeg")},
    )
    assert api.status_code == 400
    assert api.json()["error"]["code"] == "method_unavailable"
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page = load_page(context, service.url, errors)
    # The Engine step offers no engine for any painting but gatys, and says so by the upload.
    expect(page.locator('input[name="method"]')).to_have_count(2)
    expect(page.locator("#painting-engines")).to_have_text("(engines: Best quality)")
    page.get_by_role("tab", name="Live camera").click()
    expect(page.locator("#live-painting-note")).to_have_text(
        "(needs the arbitrary engine on the server)"
    )
    page.set_input_files("#live-painting", str(painting))
    expect(page.locator("#live-error")).to_contain_text(api.json()["error"]["message"])
    context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


def test_live_mode_with_any_painting_through_the_arbitrary_engine(
    page: Any, service: Service
) -> None:
    methods = httpx.get(f"{service.url}/api/styles").json()["methods"]
    if "arbitrary" not in methods:
        pytest.skip("no arbitrary engine installed: covered by the test of its message")
    page.get_by_role("tab", name="Live camera").click()
    page.select_option("#live-size", "160x120")
    page.set_input_files("#live-painting", str(example_path("great_wave")))
    fps, stats = run_live_camera(page)
    assert fps > 0
    assert stats["diff"] > 10 and stats["std"] > 5, stats
    page.get_by_role("button", name="Stop").click()


# Personal styles: "Make it a style" ------------------------------------------------------------
@pytest.fixture(scope="module")
def refine_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A server that refines in seconds (tiny crops, batch 1; 3 s is its smallest budget)."""
    from tests.test_service_refine import TINY

    server = Service(tmp_path_factory.mktemp("web-refine"), TINY).start()
    yield server
    server.stop()


def personal_of(service: Service, token: str) -> list[dict[str, Any]]:
    listed = httpx.get(f"{service.url}/api/styles", headers={"Authorization": f"Bearer {token}"})
    personal: list[dict[str, Any]] = listed.json()["personal"]
    return personal


def keep_then_delete_from_the_page(
    page: Any, service: Service, style_id: str, other: Any | None = None
) -> None:
    """Keep: the card says "kept" and the API agrees. Delete: only once confirmed; a failure
    is shown and leaves the card; then the card leaves the gallery, the live list and the API.
    `other`, another tab of the same browser, follows the keep and the deletion."""
    token = page.evaluate("() => localStorage.getItem('restyle-owner-token')")
    card = page.locator(f'#personal-gallery .personal-card[data-style="{style_id}"]')
    title = card.locator(".title").inner_text()
    expect(card.locator(".artist")).to_contain_text("yours, until ")
    card.get_by_role("button", name=f"Keep {title}").click()
    expect(card.locator(".artist")).to_have_text("yours, kept")
    expect(card.get_by_role("button", name=f"Keep {title}")).to_have_count(0)
    rename = card.get_by_role("button", name=f"Rename {title}")
    expect(rename).to_be_focused()
    (kept,) = personal_of(service, token)
    assert kept["id"] == style_id and kept["kept"] is True and kept["expires_at"] is None
    if other is not None:
        other_card = other.locator(f'#personal-gallery .personal-card[data-style="{style_id}"]')
        expect(other_card.locator(".artist")).to_have_text("yours, kept")

    # Rename: a dismissed prompt changes nothing; a new name retitles the card, here and in
    # the other tab, and the API agrees.
    page.once("dialog", lambda dialog: dialog.dismiss())
    rename.click()
    expect(card.locator(".title")).to_have_text(title)
    renamed = f"{title} (mine)"[:80]
    page.once("dialog", lambda dialog: dialog.accept(f"  {renamed}  "))
    rename.click()
    expect(card.locator(".title")).to_have_text(renamed)
    title = renamed
    expect(card.get_by_role("button", name=f"Rename {title}")).to_be_focused()
    assert [style["title"] for style in personal_of(service, token)] == [title]
    if other is not None:
        expect(other_card.locator(".title")).to_have_text(title)
    delete = card.get_by_role("button", name=f"Delete {title}")

    asked: list[str] = []

    def answer(accept: bool) -> None:
        def on_dialog(dialog: Any) -> None:
            asked.append(dialog.message)
            if accept:
                dialog.accept()
            else:
                dialog.dismiss()

        page.once("dialog", on_dialog)

    answer(False)
    delete.click()
    assert asked == [f"Delete your style “{title}”? This cannot be undone."]
    expect(card).to_be_visible()
    # The network fails: the message says what was not done and why; the card stays.
    page.route(f"**/api/styles/{style_id}", lambda route: route.abort())
    answer(True)
    delete.click()
    expect(page.locator("#personal-error")).to_contain_text(
        f"Could not delete “{title}”: Cannot reach the server"
    )
    expect(card).to_be_visible()
    assert [style["id"] for style in personal_of(service, token)] == [style_id]
    page.unroute(f"**/api/styles/{style_id}")
    answer(True)
    delete.click()
    expect(card).to_have_count(0)
    expect(page.locator("#personal-error")).to_be_hidden()
    expect(page.locator("#personal-gallery")).to_be_hidden()
    expect(page.locator("#personal-title")).to_be_hidden()
    expect(page.locator(f'#live-style option[value="{style_id}"]')).to_have_count(0)
    expect(page.locator('input[name="style"]:focus')).to_have_count(1)
    assert len(asked) == 3 and personal_of(service, token) == []


ARTEFACT_WORDS = {
    "streaks": "fine colour stripes",
    "grid": "a grid or checkerboard pattern",
    "seams": "straight seams",
}


def expect_artefact_line(page: Any, report: dict[str, Any]) -> None:
    """The finished refinement's line says in words what its `artefacts` report found, with no
    numbers (they are in the tooltip), or quietly that it found nothing."""
    line = page.locator("#refine-artefacts")
    expect(line).to_be_visible()
    text = line.inner_text()
    title = line.get_attribute("title") or ""
    assert title.startswith(f"Checked on {report['checked_photos']} photos"), title
    if not report["flagged"]:
        assert text == "No artefacts found." and "clean" in (line.get_attribute("class") or "")
        return
    assert text.startswith("This style shows ") and text.endswith(" at 100% zoom."), text
    for measure in ARTEFACT_WORDS:
        assert (ARTEFACT_WORDS[measure] in text) == (measure in report["flagged"]), text
    assert not re.search(r"\d", text.replace("100%", "")), text
    assert all(flag in title for flag in report["flags"]), title
    assert "clean" not in (line.get_attribute("class") or "")


def test_a_painting_becomes_a_personal_style_used_kept_and_deleted_from_your_styles(
    browser: Any, refine_service: Service
) -> None:
    methods = httpx.get(f"{refine_service.url}/api/styles").json()["methods"]
    if "arbitrary" not in methods:
        pytest.skip("no arbitrary engine installed: a painting's result needs it")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page = load_page(context, refine_service.url, errors)
    expect(page.locator("#personal-title")).to_be_hidden()
    page.set_input_files("#content-input", str(example_path("cat")))
    page.set_input_files("#style-input", str(example_path("great_wave")))
    page.check('input[name="method"][value="arbitrary"]')
    page.get_by_role("button", name="Stylize").click()
    wait_for_result(page)

    offer = page.locator("#refine-offer")
    expect(offer).to_be_visible()
    expect(page.locator("#refine-minutes")).to_have_value("0.05")  # the smallest, 3 seconds
    # Every text the training's status line shows.
    page.evaluate(
        """() => {
          window.refineSeen = [];
          new MutationObserver(() => window.refineSeen.push(
            document.querySelector('#refine-status').textContent,
          )).observe(document.querySelector('#refine-status'), { childList: true,
                                                                characterData: true,
                                                                subtree: true });
        }"""
    )
    with page.expect_response("**/api/refines") as created:
        offer.get_by_role("button", name="Make it a style").click()
    refine_job = created.value.json()
    expect(page.locator("#refine")).to_be_visible()
    # Another tab of this browser (the same owner token), open before the style exists.
    other = load_page(context, refine_service.url, errors)
    expect(other.locator("#personal-title")).to_be_hidden()
    expect(page.locator("#refine-status")).to_contain_text("s left", timeout=60_000)
    expect(page.locator("#refine-preview")).to_be_visible(timeout=60_000)
    assert page.evaluate("() => document.querySelector('#refine-preview').src").startswith(
        "data:image/jpeg"
    )
    expect(page.locator("#refine-artefacts")).to_be_hidden()  # no check while it trains
    expect(page.locator("#refine-status")).to_contain_text("Your styles", timeout=120_000)
    # The training showed its progress as time, never as a raw loss or step count.
    seen: list[str] = page.evaluate("() => window.refineSeen")
    timed = re.compile(r"^Training: (\d+ s|\d+ min( \d+ s)?) so far, about \d+ s left$")
    assert any(timed.match(text) for text in seen), seen
    assert not any(re.search(r"loss|step|e[+-]\d", text) for text in seen), seen
    # The check of the finished network, as the API reports it.
    finished = httpx.get(
        f"{refine_service.url}/api/jobs/{refine_job['id']}",
        headers={"Authorization": f"Bearer {refine_job['token']}"},
    ).json()
    assert finished["status"] == "succeeded" and finished["artefacts"] is not None, finished
    expect_artefact_line(page, finished["artefacts"])

    # The new style, in "Your styles" (its picture loads with the token) and the live list.
    cards = page.locator("#personal-gallery .style-card")
    expect(cards).to_have_count(1)
    expect(page.locator("#personal-title")).to_be_visible()
    expect(cards.first.locator("input")).to_be_checked()
    page.wait_for_function(
        "() => { const i = document.querySelector('#personal-gallery img');"
        " return i.complete && i.naturalWidth > 0; }"
    )
    style_id = cards.first.locator("input").get_attribute("value")
    assert style_id is not None and style_id.startswith("my-")
    live_ids = page.locator("#live-style option").evaluate_all("os => os.map(o => o.value)")
    assert style_id in live_ids
    # The other tab shows it too, without a reload, in its gallery and live list.
    other_card = other.locator(f'#personal-gallery .personal-card[data-style="{style_id}"]')
    expect(other_card).to_have_count(1)
    expect(other.locator(f'#live-style option[value="{style_id}"]')).to_have_count(1)

    # The page moved on to the engine that runs it (Fast), the new style chosen: the next
    # Stylize uses them.
    expect(page.locator('input[name="method"][value="fast"]')).to_be_checked()
    expect(page.locator("#refine-status")).to_contain_text("with the Fast engine")
    expect(page.locator('[data-option="iterations"]')).to_be_hidden()  # Fast's options shown
    page.locator("#result-image").evaluate("i => i.removeAttribute('src')")
    page.get_by_role("button", name="Stylize").click()
    wait_for_result(page)
    entry = history(page)[0]
    status = httpx.get(
        f"{refine_service.url}/api/jobs/{entry['id']}",
        headers={"Authorization": f"Bearer {entry['token']}"},
    ).json()
    assert status["status"] == "succeeded"
    assert status["options"]["style"] == style_id and status["options"]["method"] == "fast"
    # Another browser (no token) sees none of it.
    assert httpx.get(f"{refine_service.url}/api/styles").json()["personal"] == []
    keep_then_delete_from_the_page(page, refine_service, style_id, other)
    expect(other_card).to_have_count(0)  # deleted in the first tab: gone from the other
    context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


EVENTS = re.compile(r"/api/jobs/[^/]+/events")


def with_report(response: Any, report: dict[str, Any]) -> str:
    """A job's whole event stream (`response`, fetched to its end) with `report` merged into
    the `artefacts` of its `end` event."""
    lines, event = response.text().splitlines(keepends=True), ""
    for i, line in enumerate(lines):
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event == "end":
            data = json.loads(line.split(":", 1)[1])
            data["artefacts"] = {**data["artefacts"], **report}
            lines[i] = f"data: {json.dumps(data)}{line[len(line.rstrip()) :]}"
    return "".join(lines)


def test_a_gallery_painting_becomes_a_style_and_its_deletion_moves_a_live_camera_on(
    browser: Any, refine_service: Service
) -> None:
    listed = httpx.get(f"{refine_service.url}/api/styles").json()
    if "arbitrary" not in listed["methods"]:
        pytest.skip("no arbitrary engine installed: a painting's result needs it")
    title = next(style["title"] for style in listed["styles"] if style["id"] == "great-wave")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page = load_page(context, refine_service.url, errors)
    choose_photo_and_style(page, "cat", "The Great Wave")
    page.check('input[name="method"][value="arbitrary"]')
    page.get_by_role("button", name="Stylize").click()
    wait_for_result(page)

    # A gallery painting is offered too: the server refines its own copy of it, by id.
    offer = page.locator("#refine-offer")
    expect(offer).to_be_visible()
    expect(page.locator("#refine-minutes")).to_have_value("0.05")  # the smallest, 3 seconds
    # Its job's events arrive with a clean artefact check in place of the real one (whatever
    # that is), so this refinement shows the quiet line.
    clean = {"streaks": 1.0, "grid": 0.001, "seams": 1.5, "flagged": [], "flags": []}

    def reported_clean(route: Any) -> None:
        events = route.fetch(timeout=120_000)  # to the stream's end
        route.fulfill(response=events, body=with_report(events, clean))

    page.route(EVENTS, reported_clean)
    with page.expect_request("**/api/refines") as sent:
        offer.get_by_role("button", name="Make it a style").click()
    form = sent.value.post_data or ""
    # `name="painting"` (the quote closing it) is the upload field, not `painting_style`.
    assert 'name="painting_style"' in form and 'name="painting"' not in form, form
    expect(page.locator("#refine-status")).to_contain_text("Your styles", timeout=120_000)
    page.unroute(EVENTS)
    expect_artefact_line(page, {**clean, "checked_photos": ARTEFACT_PHOTOS})
    token = page.evaluate("() => localStorage.getItem('restyle-owner-token')")
    (mine,) = personal_of(refine_service, token)
    assert mine["source"] == "great-wave" and mine["title"] == title, mine
    style_id = mine["id"]
    card = page.locator(f'#personal-gallery .personal-card[data-style="{style_id}"]')
    expect(card.locator(".title")).to_have_text(title)
    expect(card.locator("input")).to_be_checked()
    expect(page.locator('input[name="method"][value="fast"]')).to_be_checked()

    # A personal style is a network already: its arbitrary-engine result offers nothing.
    page.check('input[name="method"][value="arbitrary"]')
    page.locator("#result-image").evaluate("i => i.removeAttribute('src')")
    page.get_by_role("button", name="Stylize").click()
    wait_for_result(page)
    entry = history(page)[0]
    status = httpx.get(
        f"{refine_service.url}/api/jobs/{entry['id']}",
        headers={"Authorization": f"Bearer {entry['token']}"},
    ).json()
    assert status["options"]["style"] == style_id and status["options"]["method"] == "arbitrary"
    expect(offer).to_be_hidden()

    # The live camera paints with the style; another tab of this browser (the same owner token)
    # deletes it: the camera moves on to the list's first style, saying so.
    page.get_by_role("tab", name="Live camera").click()
    page.select_option("#live-style", style_id)
    page.select_option("#live-size", "160x120")
    run_live_camera(page)
    first = page.locator("#live-style option").first.get_attribute("value")
    assert first is not None and first != style_id
    other = load_page(context, refine_service.url, errors)
    other.once("dialog", lambda dialog: dialog.accept())
    with page.expect_request(f"**/api/styles/{first}/model.onnx"):
        other.get_by_role("button", name=f"Delete {title}").click()
    expect(other.locator("#personal-gallery .personal-card")).to_have_count(0)
    status_line = page.locator("#live-status")
    expect(status_line).to_contain_text("Running with ", timeout=60_000)  # the next one is in
    expect(status_line).to_contain_text(f"your style “{title}” was deleted")
    expect(page.locator("#live-style")).to_have_value(first)
    expect(page.locator(f'#live-style option[value="{style_id}"]')).to_have_count(0)
    expect(card).to_have_count(0)  # this tab's "Your styles" too
    # Frames go on, through the first style's network.
    frames = int(page.locator("#live-canvas").get_attribute("data-frames") or "0")
    page.wait_for_function(
        f"() => Number(document.querySelector('#live-canvas').dataset.frames) >= {frames + 3}",
        timeout=60_000,
    )
    expect(page.locator("#live-error")).to_be_hidden()
    assert personal_of(refine_service, token) == []
    context.close()
    assert errors == [], f"uncaught errors in the pages: {errors}"
