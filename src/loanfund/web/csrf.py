"""CSRF protection for forms: a signed double-submit token.

Each browser gets a random value in the `lf_csrf` cookie (HttpOnly, SameSite=Lax, Secure in production).
A form carries `csrf_token` = HMAC(secret key, "csrf:" + that value). A state-changing post is accepted
only when its token matches its own cookie: another site can make the browser send the cookie but
cannot read it, nor compute the token without the server's key. Pages with a signed-in session can bind
the token to the session instead (`token_for(binding)` / `check(binding, token)`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated, Final

from fastapi import Depends, Request

from loanfund.core.config import Settings
from loanfund.core.errors import Forbidden

COOKIE: Final = "lf_csrf"
FIELD: Final = "csrf_token"
_STATE_NEW: Final = "csrf_new_cookie"


def token_for(settings: Settings, binding: str) -> str:
    key = settings.secret_key.get_secret_value().encode()
    return hmac.new(key, f"csrf:{binding}".encode(), hashlib.sha256).hexdigest()


def check(settings: Settings, binding: str | None, token: str | None) -> bool:
    if not binding or not token:
        return False
    return hmac.compare_digest(token_for(settings, binding), token)


def _binding(request: Request) -> str | None:
    value = getattr(request.state, _STATE_NEW, None) or request.cookies.get(COOKIE)
    return value if value and 16 <= len(value) <= 128 else None


def ensure_token(request: Request) -> str:
    """The form token of this browser; gives it a cookie first if it has none (set by `render`)."""
    settings: Settings = request.app.state.settings
    binding = _binding(request)
    if binding is None:
        binding = secrets.token_urlsafe(32)
        setattr(request.state, _STATE_NEW, binding)
    return token_for(settings, binding)


def new_cookie(request: Request) -> str | None:
    """The cookie value to set on this response, if `ensure_token` made one."""
    value: str | None = getattr(request.state, _STATE_NEW, None)
    return value


class CsrfRefused(Forbidden):
    code = "csrf_failed"


def verify(request: Request, form: dict[str, str]) -> None:
    """Refuse (403 `csrf_failed`) a post whose token does not belong to this browser's cookie."""
    if not is_valid(request, form):
        raise CsrfRefused(
            "The form has expired or did not come from this site; reload the page and try again"
        )


async def form_data(request: Request) -> dict[str, str]:
    """Dependency: the posted form's text fields (a page handler then calls `verify` or `is_valid`)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def is_valid(request: Request, form: dict[str, str]) -> bool:
    settings: Settings = request.app.state.settings
    return check(settings, request.cookies.get(COOKIE), form.get(FIELD))


FormData = Annotated[dict[str, str], Depends(form_data)]
