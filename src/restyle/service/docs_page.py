"""The interactive API docs at /docs, served whole by this server: it works offline.

FastAPI's own /docs page loads Swagger UI's script and stylesheet from a CDN, so without internet
it is blank. This is the same page (FastAPI's `get_swagger_ui_html`) pointed at Swagger UI's files
from the swagger-ui-bundle-v2 package (Swagger UI's dist folder, nothing else), served at
/docs-assets/ with Swagger UI's licence (Apache-2.0) beside them. FastAPI's /redoc, which loads
ReDoc from a CDN too, is not offered.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, PlainTextResponse
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

ASSETS_PATH = "/docs-assets"
SWAGGER_UI_DIR = Path(str(swagger_ui_path))
SWAGGER_UI_DISTRIBUTION = "swagger-ui-bundle-v2"
# What the page loads, and the source maps a browser's developer tools ask for.
SWAGGER_UI_FILES = frozenset(
    {
        "swagger-ui-bundle.js",
        "swagger-ui-bundle.js.map",
        "swagger-ui.css",
        "swagger-ui.css.map",
        "favicon-32x32.png",
    }
)


class _SwaggerUiFiles(StaticFiles):
    """The files of Swagger UI's dist folder that the page uses; its demo page (which would
    load the Petstore example from the internet) and its other builds are not served."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path not in SWAGGER_UI_FILES:
            raise HTTPException(404, f"no file {path!r} in {ASSETS_PATH}")
        return await super().get_response(path, scope)


def swagger_ui_licence() -> str:
    """Swagger UI's licence, as its package installed it."""
    distribution = metadata.distribution(SWAGGER_UI_DISTRIBUTION)
    for name in ("licenses/LICENSE", "LICENSE"):  # where the wheel's metadata version puts it
        text = distribution.read_text(name)
        if text:
            return text
    raise RuntimeError(f"{SWAGGER_UI_DISTRIBUTION} is installed without its licence")


def mount_docs(app: FastAPI) -> None:
    """/docs (the app must be made with `docs_url=None, redoc_url=None`), Swagger UI's OAuth2
    redirect page, and the files at /docs-assets/."""
    licence = swagger_ui_licence()
    redirect_url = app.swagger_ui_oauth2_redirect_url

    @app.get("/docs", include_in_schema=False)
    async def docs_page(request: Request) -> HTMLResponse:
        # Behind a proxy that strips a prefix, every URL the page uses carries it.
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon-32x32.png",
            oauth2_redirect_url=f"{root}{redirect_url}" if redirect_url else None,
            init_oauth=app.swagger_ui_init_oauth,
            # No spec validator badge: it would send the spec's URL to validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None, **(app.swagger_ui_parameters or {})},
        )

    if redirect_url:

        @app.get(redirect_url, include_in_schema=False)
        async def docs_oauth2_redirect() -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()

    @app.get(f"{ASSETS_PATH}/LICENSE", include_in_schema=False)
    async def docs_assets_licence() -> PlainTextResponse:
        return PlainTextResponse(licence)

    app.mount(ASSETS_PATH, _SwaggerUiFiles(directory=SWAGGER_UI_DIR), name="docs-assets")
