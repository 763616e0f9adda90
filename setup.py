"""Build step that puts the web app's live-mode runtime into the package.

Everything else about the package is in pyproject.toml. A wheel (or `pip install .`) gets the few
onnxruntime-web files the page loads, copied from `web/node_modules/onnxruntime-web/` (`npm ci`
in `web/`, which `make` runs) into `restyle/service/vendor/onnxruntime-web/` of the build, with
onnxruntime-web's licence. Nothing is copied into the source tree, and an editable install copies
nothing: there `restyle serve` finds `web/node_modules/` itself (restyle/service/web.py).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
ORT_PACKAGE = ROOT / "web" / "node_modules" / "onnxruntime-web"
# What the browser fetches, checked in headless Chromium for both backends: the entry point the
# page's import map names (src/restyle/service/static/index.html; its WebGPU build also carries
# the WASM backend and is the threads' worker script too) and the WebAssembly binary it loads.
ORT_FILES = ("ort.webgpu.bundle.min.mjs", "ort-wasm-simd-threaded.asyncify.wasm")
# The npm package ships no licence file; this is the MIT licence of the project it is built from
# (github.com/microsoft/onnxruntime). A LICENSE in the package itself wins if a release adds one.
ORT_LICENSES = (ORT_PACKAGE / "LICENSE", ROOT / "web" / "onnxruntime-web.LICENSE")
VENDOR = Path("restyle") / "service" / "vendor" / "onnxruntime-web"


class BuildPyWithOnnxruntimeWeb(build_py):
    """build_py, then the live mode's onnxruntime-web files into the built package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / VENDOR
        shutil.rmtree(target, ignore_errors=True)  # no stale files from an earlier build
        missing = [name for name in ORT_FILES if not (ORT_PACKAGE / "dist" / name).is_file()]
        if missing:
            print(
                f"\nWARNING: {ORT_PACKAGE / 'dist'} lacks {', '.join(missing)}: this build of "
                "restyle has no live mode (the web page will say onnxruntime-web is missing). "
                "Run `npm ci` in web/ (or `make`) and build again.\n",
                file=sys.stderr,
            )
            return
        licence = next((path for path in ORT_LICENSES if path.is_file()), None)
        if licence is None:
            raise RuntimeError(f"onnxruntime-web's licence is missing: {ORT_LICENSES[-1]}")
        target.mkdir(parents=True)
        for name in ORT_FILES:
            shutil.copyfile(ORT_PACKAGE / "dist" / name, target / name)
        shutil.copyfile(licence, target / "LICENSE")
        print(f"copied onnxruntime-web ({', '.join(ORT_FILES)}, LICENSE) to {target}")


setup(cmdclass={"build_py": BuildPyWithOnnxruntimeWeb})
