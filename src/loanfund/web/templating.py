"""Jinja2 for the pages: one environment per language over the kit's templates and an audience's own.

`Templates(dir).render(request, "portal/index.html", {...})` answers the page in the reader's language
with the page security headers (a CSP that names no external source: the app serves every script, style
and font itself) and, when needed, the CSRF and language cookies.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any, Final

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

from loanfund.core.config import Settings
from loanfund.web import csrf, formatting, i18n
from loanfund.web.messages import Gettext

KIT_TEMPLATES: Final = Path(__file__).parent / "templates"

# Everything from this origin, nothing inline, nothing from another host; no framing, no plugins.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# Referrer-Policy: no-referrer and the other security headers come from the middleware on every response.
PAGE_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",
}
LANG_COOKIE_MAX_AGE: Final = 365 * 24 * 3600


def gettext_for(request: Request) -> Gettext:
    """The reader's `gettext`, for sentences made in Python (errors beside fields, flash messages)."""
    return i18n.translations(i18n.locale_of(request)).gettext


class Templates:
    def __init__(self, *directories: Path) -> None:
        self._loader = ChoiceLoader([FileSystemLoader(d) for d in (*directories, KIT_TEMPLATES)])
        self._envs: dict[str, Environment] = {}

    def environment(self, locale: str, settings: Settings) -> Environment:
        env = self._envs.get(locale)
        if env is None:
            env = Environment(
                loader=self._loader,
                autoescape=select_autoescape(["html", "xml"], default_for_string=True, default=False),
                undefined=StrictUndefined,
                extensions=["jinja2.ext.i18n"],
                trim_blocks=True,
                lstrip_blocks=True,
            )
            env.install_gettext_translations(i18n.translations(locale), newstyle=True)  # type: ignore[attr-defined]
            env.filters.update(
                money=formatting.money,
                wan=formatting.wan,
                iso_date=partial(formatting.iso_date, tz=settings.timezone),
                percent=formatting.percent,
                ratio_percent=formatting.ratio_percent,
            )
            self._envs[locale] = env
        return env

    def render_text(self, request: Request, name: str, context: Mapping[str, Any] | None = None) -> str:
        settings: Settings = request.app.state.settings
        locale = i18n.locale_of(request)
        env = self.environment(locale, settings)
        base = {
            "request": request,
            "settings": settings,
            "locale": locale,
            "lang_tag": i18n.LANG_TAGS[locale],
            "languages": [(loc, i18n.LANG_TAGS[loc], i18n.NATIVE_NAMES[loc]) for loc in i18n.LOCALES],
            "csrf_field": csrf.FIELD,
            "csrf_token": csrf.ensure_token(request),
            "path": request.url.path,
        }
        return env.get_template(name).render({**base, **(context or {})})

    def render(
        self,
        request: Request,
        name: str,
        context: Mapping[str, Any] | None = None,
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        html = self.render_text(request, name, context)
        response = HTMLResponse(html, status_code=status_code, headers={**PAGE_HEADERS, **(headers or {})})
        set_cookies(request, response)
        return response


def set_cookies(request: Request, response: HTMLResponse) -> None:
    """The CSRF cookie a page's form needs (first visit) and the language chosen with `?lang=`."""
    settings: Settings = request.app.state.settings
    secure = settings.env == "prod"
    if (value := csrf.new_cookie(request)) is not None:
        response.set_cookie(csrf.COOKIE, value, httponly=True, samesite="lax", secure=secure, path="/")
    chosen = i18n.normalise(request.query_params.get("lang"))
    if chosen is not None and chosen != i18n.normalise(request.cookies.get(i18n.COOKIE)):
        response.set_cookie(
            i18n.COOKIE, chosen, max_age=LANG_COOKIE_MAX_AGE, samesite="lax", secure=secure, path="/"
        )
