"""What every audience's pages share at the app level: static files and HTML error pages.

`install(app)` mounts `/static/kit` (the kit's CSS and JS) and `/static/vendor` (the npm packages copied
in by `make assets`), and makes every error outside the API an HTML page in the reader's language —
the API keeps its JSON envelope. An audience mounts its own files with `mount_static(app, name, dir)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from loanfund.core.errors import LoanfundError
from loanfund.web.messages import sentence
from loanfund.web.templating import Templates, gettext_for

STATIC: Final = Path(__file__).parent / "static"
VENDOR: Final = STATIC / "vendor"
NOT_PAGES: Final = ("/api/", "/static/", "/docs", "/redoc", "/openapi.json", "/healthz", "/readyz")

Handler = Callable[[Request, Any], Awaitable[Response]]
_templates = Templates()


def is_page(request: Request) -> bool:
    return not request.url.path.startswith(NOT_PAGES)


def mount_static(app: FastAPI, name: str, directory: Path) -> None:
    app.mount(f"/static/{name}", StaticFiles(directory=directory, check_dir=False), name=f"static-{name}")


def error_page(
    request: Request, status_code: int, code: str, details: Any = None, headers: Any = None
) -> Response:
    params = details if isinstance(details, dict) else {}
    message = sentence(code, gettext_for(request), params)
    return _templates.render(
        request,
        "kit/error.html",
        {"status_code": status_code, "code": code, "message": message},
        status_code=status_code,
        headers=dict(headers) if headers else None,
    )


def install(app: FastAPI) -> None:
    mount_static(app, "kit", STATIC / "kit")
    mount_static(app, "vendor", VENDOR)
    api_loanfund = cast(Handler, app.exception_handlers[LoanfundError])
    api_http = cast(Handler, app.exception_handlers[StarletteHTTPException])
    api_validation = cast(Handler, app.exception_handlers[RequestValidationError])

    @app.exception_handler(LoanfundError)
    async def _loanfund(request: Request, exc: LoanfundError) -> Response:
        if not is_page(request):
            return await api_loanfund(request, exc)
        return error_page(request, exc.status_code, exc.code, exc.details, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if not is_page(request):
            return await api_http(request, exc)
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "unknown"
        )
        return error_page(request, exc.status_code, code, None, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        if not is_page(request):
            return await api_validation(request, exc)
        return error_page(request, 422, "validation_error")
