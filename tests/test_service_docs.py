"""/docs without the internet: a real `restyle serve` on loopback serves Swagger UI's page and
every file it loads, and Debian's headless Chromium renders it with every request to another
host refused."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from tests.service_processes import Service

from restyle.service.docs_page import SWAGGER_UI_DIR

pytestmark = pytest.mark.timeout(300)

CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    server = Service(tmp_path_factory.mktemp("docs")).start()
    yield server
    server.stop()


class _Links(HTMLParser):
    """The URLs a page loads: every <script src> and <link href>."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href"}.get(tag)
        self.urls += [value for name, value in attrs if name == wanted and value is not None]


def test_docs_page_loads_only_files_this_server_serves(service: Service) -> None:
    page = httpx.get(f"{service.url}/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "://" not in page.text  # no CDN, no absolute URL of any kind
    links = _Links()
    links.feed(page.text)
    assert len(links.urls) == 3, links.urls  # the script, the stylesheet, the icon
    for url in links.urls:
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("", "") and url.startswith("/"), url
        response = httpx.get(f"{service.url}{url}")
        assert response.status_code == 200, url
        name = url.rsplit("/", 1)[-1]
        assert CONTENT_TYPES[name[name.rindex(".") :]] in response.headers["content-type"]
        assert len(response.content) > 500, url
        assert response.content == (SWAGGER_UI_DIR / name).read_bytes()
    bundle = httpx.get(f"{service.url}/docs-assets/swagger-ui-bundle.js").text
    assert "SwaggerUIBundle" in bundle and '"5.' in bundle  # Swagger UI 5.x


def test_docs_assets_carry_swagger_uis_licence_and_nothing_else(service: Service) -> None:
    licence = httpx.get(f"{service.url}/docs-assets/LICENSE")
    assert licence.status_code == 200
    assert licence.headers["content-type"].startswith("text/plain")
    assert "Apache License" in licence.text and "Version 2.0" in licence.text
    # Swagger UI's demo page (it loads the Petstore example from the internet) is not served.
    for path in ("/docs-assets/index.html", "/docs-assets/swagger-initializer.js", "/redoc"):
        missing = httpx.get(f"{service.url}{path}")
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found"), path
    redirect = httpx.get(f"{service.url}/docs/oauth2-redirect")
    assert redirect.status_code == 200 and "swaggerUIRedirectOauth2" in redirect.text


def test_docs_render_in_chromium_with_no_request_to_another_host(
    browser: Any, service: Service
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    here = urlsplit(service.url).netloc
    local: list[str] = []
    foreign: list[str] = []

    def only_this_server(route: Any) -> None:
        parts = urlsplit(route.request.url)
        if parts.netloc == here:
            local.append(parts.path)
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    context = browser.new_context()
    context.route("**/*", only_this_server)
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{service.url}/docs")
        sync_api.expect(page.locator(".information-container .title")).to_contain_text("Restyle")
        jobs = page.locator('.opblock-summary-path[data-path="/api/jobs"]').first
        sync_api.expect(jobs).to_be_visible()
        # An operation opens: its parameters come from /openapi.json, rendered by Swagger UI.
        page.locator('.opblock-get:has([data-path="/api/jobs/{job_id}"]) .opblock-summary').click()
        sync_api.expect(page.locator(".parameters-container").first).to_contain_text("job_id")
    finally:
        context.close()
    assert foreign == [], f"/docs asked another host: {foreign}"
    assert errors == [], f"uncaught errors in the page: {errors}"
    assert {"/docs", "/docs-assets/swagger-ui-bundle.js", "/openapi.json"} <= set(local), local
