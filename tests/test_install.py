"""Live mode from an installed wheel: the repository is built into a wheel (setup.py copies the
onnxruntime-web files the page loads into it), the wheel is installed into a folder of its own,
and `restyle serve` runs from that folder in an empty working directory, so neither the source
tree nor the working directory offers `web/node_modules/`. Debian's headless Chromium then runs
live mode against it, as tests/test_web.py does against the source tree."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests import test_web  # skips this module too where Playwright is missing
from tests.service_processes import Service

pytestmark = pytest.mark.timeout(600)

expect = test_web.expect
# The fixture of tests/test_web.py: a fresh page (in conftest.py's Chromium) that fails the test
# on uncaught errors in it, served by this module's `service`.
page = test_web.page

ROOT = Path(__file__).resolve().parents[1]
VENDOR = Path("restyle") / "service" / "vendor" / "onnxruntime-web"
ENTRY = "ort.webgpu.bundle.min.mjs"  # what the page's import map names
SHIPPED = {ENTRY, "ort-wasm-simd-threaded.asyncify.wasm", "LICENSE"}


def _run(command: list[str], **kwargs: Any) -> str:
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    stdout: str = done.stdout
    return stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's wheel, installed (without dependencies: .venv has them) into a folder."""
    work = tmp_path_factory.mktemp("wheel")
    # Build output in the temporary folder, not in the checkout's build/ and src/*.egg-info.
    extra_config = work / "build.cfg"
    extra_config.write_text(
        f"[build]\nbuild_base = {work / 'build'}\n[egg_info]\negg_base = {work}\n"
    )
    env = {**os.environ, "DIST_EXTRA_CONFIG": str(extra_config)}
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(work), str(ROOT)], env=env)
    [wheel] = work.glob("restyle-*.whl")
    target = work / "site"
    _run([*pip, "install", "--no-deps", "--no-compile", "--target", str(target), str(wheel)])
    return target


@pytest.fixture(scope="module")
def service(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """`restyle serve` importing restyle from the installed folder, run in an empty folder."""
    cwd = tmp_path_factory.mktemp("cwd")
    with pytest.MonkeyPatch.context() as patch:
        # PYTHONPATH comes before .venv's site-packages, where the editable install's .pth
        # points at src/; safe path: the working directory is not put on sys.path either.
        patch.setenv("PYTHONPATH", str(installed))
        patch.setenv("PYTHONSAFEPATH", "1")
        patch.chdir(cwd)
        where = _run(
            [
                sys.executable,
                "-c",
                "import restyle.service.web as web; print(web.__file__);"
                " print(web.find_onnxruntime_web())",
            ]
        ).split()
        assert where == [
            str(installed / "restyle" / "service" / "web.py"),
            str(installed / VENDOR),
        ], where
        server = Service(tmp_path_factory.mktemp("data")).start()
    yield server
    server.stop()


def test_wheel_ships_only_the_files_the_page_loads(installed: Path) -> None:
    folder = installed / VENDOR
    assert {path.name for path in folder.iterdir()} == SHIPPED
    licence = (folder / "LICENSE").read_text()
    assert "MIT License" in licence and "Microsoft Corporation" in licence


def test_wheel_ships_the_refinement_photos_with_their_licences(installed: Path) -> None:
    folder = installed / "restyle" / "examples" / "refine"
    photos = {path.name for path in folder.glob("*.jpg")}
    source = {
        path.name
        for path in (Path(__file__).parents[1] / "src/restyle/examples/refine").glob("*.jpg")
    }
    assert photos == source and len(photos) >= 10
    assert (folder / "LICENSES.md").is_file()


def test_installed_package_serves_onnxruntime_web(installed: Path, service: Service) -> None:
    entry = httpx.get(f"{service.url}/vendor/onnxruntime-web/{ENTRY}")
    assert entry.status_code == 200
    assert entry.headers["content-type"] == "text/javascript"
    assert entry.content == (installed / VENDOR / ENTRY).read_bytes()
    # A file of the npm package that the wheel leaves out: this server is not reading
    # web/node_modules.
    assert httpx.head(f"{service.url}/vendor/onnxruntime-web/ort.min.mjs").status_code == 404


def test_live_mode_from_the_installed_package(page: Any, service: Service) -> None:
    vendor: dict[str, int] = {}  # file name → status of every onnxruntime-web response

    def record(response: Any) -> None:
        if "/vendor/onnxruntime-web/" in response.url:
            vendor[response.url.rsplit("/", 1)[-1]] = response.status

    page.on("response", record)
    page.goto(f"{service.url}/#live")
    page.reload()  # the fixture loaded `/`; `#live` selects the tab when the page loads
    page.wait_for_selector("body[data-ready=true]")
    expect(page.get_by_role("tab", name="Live camera")).to_have_attribute("aria-selected", "true")
    page.select_option("#live-style", "great-wave")
    page.select_option("#live-size", "160x120")
    fps, stats = test_web.run_live_camera(page)
    assert fps > 0
    assert stats["diff"] > 20, stats
    assert stats["std"] > 5, stats  # not a blank canvas
    assert vendor.get(ENTRY) == 200, vendor
    assert set(vendor) <= SHIPPED, f"the page loaded files the wheel does not ship: {vendor}"
    page.get_by_role("button", name="Stop").click()


def test_pyproject_licence_is_an_spdx_expression() -> None:
    """setuptools deprecates `license = { text = ... }` (a table) and stops reading it in 2027;
    the SPDX string it reads instead needs setuptools 77 or later to build."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    licence = pyproject["project"]["license"]
    assert isinstance(licence, str), f"project.license is a table, not an SPDX string: {licence!r}"
    assert licence == "MIT"
    for name in pyproject["project"].get("license-files", []):
        assert (ROOT / name).is_file(), name
    [setuptools] = [r for r in pyproject["build-system"]["requires"] if r.startswith("setuptools")]
    minimum = re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", setuptools)
    assert minimum is not None and int(minimum.group(1)) >= 77, setuptools


def test_wheel_ships_the_engines_cost_model(installed: Path) -> None:
    # `restyle stylize` estimates every long run from it: an installed copy without it would
    # fail before its first image.
    shipped = installed / "restyle" / "engines" / "cost_model.json"
    assert (
        shipped.read_bytes()
        == (Path(__file__).parents[1] / "src/restyle/engines/cost_model.json").read_bytes()
    )
