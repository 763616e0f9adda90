"""The web app: the page at `/`, its files at `/static/`, onnxruntime-web at `/vendor/`.

The page is plain ES modules with no build step. onnxruntime-web (live mode runs the style
networks in the browser) comes from npm into `web/node_modules/` (`make run` and `make test` run
`npm ci` there). A wheel or `pip install .` carries the few files of it the page loads, copied
into `restyle/service/vendor/onnxruntime-web/` at build time (setup.py); an editable install or a
source checkout serves `web/node_modules/onnxruntime-web/dist/` itself. Without either the page
still works and live mode says what is missing.

Every response of the page and its files carries cross-origin isolation headers
(COOP `same-origin`, COEP `require-corp`): only a cross-origin-isolated page may use
SharedArrayBuffer, which onnxruntime-web's WASM backend needs to run on several threads (a phone
has 4-8 cores; one thread leaves most of them idle). Everything the page loads is same-origin,
so `require-corp` blocks nothing.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"
VENDOR_PATH = "/vendor/onnxruntime-web"
# The page's import map names this file (static/index.html); setup.py ships it and the WASM binary.
ORT_ENTRY = "ort.webgpu.bundle.min.mjs"
_ORT_PACKAGED = Path(__file__).parent / "vendor" / "onnxruntime-web"
_ORT_DIST = Path("web") / "node_modules" / "onnxruntime-web" / "dist"

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def find_onnxruntime_web() -> Path | None:
    """onnxruntime-web's files: the ones an installed package carries, else
    `web/node_modules/onnxruntime-web/dist` of the source tree (or of the working directory)."""
    source_root = Path(__file__).resolve().parents[3]  # src/restyle/service/web.py → the clone
    for folder in (_ORT_PACKAGED, source_root / _ORT_DIST, Path.cwd() / _ORT_DIST):
        if (folder / ORT_ENTRY).is_file():
            return folder
    return None


# Module scripts and WebAssembly streaming compilation refuse any other type, and the host's
# mime.types (which `mimetypes` reads) may map `.mjs` or `.wasm` to something else.
_EXACT_TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm"}


class _IsolatedStaticFiles(StaticFiles):
    """Static files with the isolation headers and exact script and WebAssembly types."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(ISOLATION_HEADERS)
        media_type = _EXACT_TYPES.get(Path(path).suffix)
        if media_type is not None and response.status_code == 200:
            response.headers["content-type"] = media_type
        return response


def mount_web_app(app: FastAPI, ort_dist: Path | None = None) -> None:
    """Serve the page at `/`, its files at `/static/`, and onnxruntime-web (when installed)."""
    index = STATIC_DIR / "index.html"

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    def web_page() -> FileResponse:
        # no-cache: the browser revalidates, so a new release's page is seen at once.
        return FileResponse(
            index,
            media_type="text/html",
            headers={**ISOLATION_HEADERS, "cache-control": "no-cache"},
        )

    app.mount("/static", _IsolatedStaticFiles(directory=STATIC_DIR), name="static")
    dist = ort_dist or find_onnxruntime_web()
    if dist is not None:
        app.mount(VENDOR_PATH, _IsolatedStaticFiles(directory=dist), name="onnxruntime-web")
