"""`/docs` (Swagger UI) and `/redoc` with every asset served by the app itself.

The bureau's intranet may have no way out, so the pages name no external host: the scripts, styles and
favicon come from the `fastapi-offline` package's files (mounted at `/docs/assets`), ReDoc loads no web
fonts, and Swagger UI's online spec validator is off. Each page's Content-Security-Policy allows only the
app's own origin, so a browser would refuse anything else as well.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs/assets"
ASSETS_DIR = str(files("fastapi_offline") / "static")
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"

# Inline scripts and styles are the pages' own (FastAPI writes the start-up script into the page);
# ReDoc runs its search in a web worker created from a blob.
PAGE_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ]
)


def _page(response: HTMLResponse) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


def install_docs(app: FastAPI) -> None:
    """Serve `/docs`, `/redoc` and their assets (the app is created with `docs_url=None, redoc_url=None`)."""
    assert app.openapi_url is not None
    openapi_url = app.openapi_url
    favicon = f"{ASSETS_URL}/favicon.png"
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return _page(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=favicon,
                oauth2_redirect_url=OAUTH2_REDIRECT_URL,
                swagger_ui_parameters={"validatorUrl": None},
            )
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return _page(get_swagger_ui_oauth2_redirect_html())

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return _page(
            get_redoc_html(
                openapi_url=openapi_url,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=favicon,
                with_google_fonts=False,
            )
        )
