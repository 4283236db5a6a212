"""The bureau console at `/console/`: the pages bureau staff use to run the fund.

Server-rendered on the web kit (`loanfund.web`), signed in with a login and password (`auth.py`,
`staff/signin.py`), every action a plain form post to a thin caller of the same service function the API
uses (htmx swaps parts in place where it helps). `install(app)` adds its routes and static files.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from loanfund.web.pages import mount_static

from . import messages  # noqa: F401 - registers the console's error sentences
from .auth import SignInRequired
from .render import HERE, is_htmx


def install(app: FastAPI) -> None:
    from . import admin, dashboard, registers, reports_pages, risk_pages, signin_pages, work

    for module in (signin_pages, dashboard, work, registers, reports_pages, risk_pages, admin):
        app.include_router(module.router)
    mount_static(app, "console", HERE / "static")

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        if is_htmx(request):  # an expired session met by a partial update: the whole page goes
            return Response(status_code=204, headers={"HX-Redirect": exc.location})
        return RedirectResponse(exc.location, status_code=303)
