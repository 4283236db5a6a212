"""Signing in and out, the one-time code step, enrolling a code, changing one's password.

Sign-in takes a login and a password (form fields `login`, `password`) and, when the staff member must
use one, a one-time code (`otp`) on the next page. A key is never accepted here: keys are for the API.
"""

from __future__ import annotations

from typing import Annotated

import segno
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from loanfund.core.db import DbSession
from loanfund.core.errors import InvalidInput, LoanfundError
from loanfund.staff import signin
from loanfund.web import csrf
from loanfund.web.messages import sentence
from loanfund.web.templating import gettext_for

from . import auth
from .auth import COOKIE, PATH, SignedIn, SignInRequired, Staffer, settings_of
from .render import NOTICES, done, errors_of, page

router = APIRouter(prefix=PATH, include_in_schema=False)


def _safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path, never another site."""
    if value and value.startswith(f"{PATH}/") and not value.startswith("//") and "\\" not in value:
        return value
    return f"{PATH}/"


def _set_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        secure=settings_of(request).secure_cookies,
        samesite="lax",
        path=PATH,
    )


def _sign_in_page(
    request: Request,
    *,
    login: str = "",
    next_url: str = "",
    error: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return page(
        request,
        None,
        "console/sign_in.html",
        {
            "login": login,
            "next": next_url,
            "error": error,
            "notice": NOTICES.get(request.query_params.get("done") or ""),
        },
        status_code=status_code,
        headers=headers,
    )


@router.get("/sign-in")
def sign_in_form(request: Request, next: str = "") -> Response:
    return _sign_in_page(request, next_url=_safe_next(next))


@router.post("/sign-in")
def sign_in(
    request: Request,
    session: DbSession,
    login: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    otp: Annotated[str, Form(max_length=16)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    csrf.verify(request, {csrf.FIELD: csrf_token})
    gettext = gettext_for(request)
    try:
        signed = signin.sign_in(
            session,
            settings_of(request),
            login=login,
            password=password,
            otp=otp or None,
            address=auth.address(request),
            user_agent=request.headers.get("user-agent"),
        )
    except signin.SignInThrottled as exc:
        message = sentence(exc.code, gettext, {"retry_after_s": exc.retry_after_s})
        return _sign_in_page(
            request, login=login, next_url=next, error=message, status_code=429, headers=exc.headers
        )
    except signin.SignInFailed as exc:
        # the failure is stored for the throttle: answer (and so commit) rather than raise
        return _sign_in_page(
            request, login=login, next_url=next, error=sentence(exc.code, gettext), status_code=401
        )
    target = (
        f"{PATH}/sign-in/code?next={_safe_next(next)}"
        if signed.row.second_factor_pending
        else _safe_next(next)
    )
    response = RedirectResponse(target, status_code=303)
    _set_cookie(request, response, signed.token)
    return response


def _pending(request: Request, session: DbSession) -> signin.Current:
    """A session waiting for its one-time code (or its enrolment)."""
    current = auth.current_session(request, session)
    if current is None:
        raise SignInRequired(f"{PATH}/sign-in")
    return current


Pending = Annotated[signin.Current, Depends(_pending)]


@router.get("/sign-in/code")
def code_form(request: Request, current: Pending, next: str = "") -> Response:
    if not current.row.second_factor_pending:
        return RedirectResponse(_safe_next(next), status_code=303)
    if current.staff.totp_enabled_at is None:
        return RedirectResponse(f"{PATH}/account/code", status_code=303)
    return page(request, None, "console/sign_in_code.html", _code_context(request, current, next))


def _code_context(
    request: Request, current: signin.Current, next_url: str, error: str | None = None
) -> dict[str, object]:
    return {
        "next": _safe_next(next_url),
        "error": error,
        "pending_token": csrf.token_for(settings_of(request), auth.binding(current)),
        "staff_name": current.staff.name,
    }


@router.post("/sign-in/code")
def code_submit(
    request: Request,
    session: DbSession,
    current: Pending,
    otp: Annotated[str, Form(max_length=16)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not csrf.check(settings_of(request), auth.binding(current), csrf_token):
        raise csrf.CsrfRefused("The form has expired; reload the page")
    gettext = gettext_for(request)
    try:
        signin.complete_second_factor(
            session, settings_of(request), current, otp, address=auth.address(request)
        )
    except signin.SignInThrottled as exc:
        message = sentence(exc.code, gettext, {"retry_after_s": exc.retry_after_s})
        return page(
            request,
            None,
            "console/sign_in_code.html",
            _code_context(request, current, next, message),
            status_code=429,
            headers=exc.headers,
        )
    except signin.SignInFailed as exc:
        context = _code_context(request, current, next, sentence(exc.code, gettext))
        return page(request, None, "console/sign_in_code.html", context, status_code=401)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/sign-out")
def sign_out(request: Request, session: DbSession, user: auth.Posting) -> Response:
    signin.sign_out(session, user.current)
    response = RedirectResponse(f"{PATH}/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path=PATH)
    return response


# --- one's own account: one-time code, password ------------------------------------------------------


@router.get("/account")
def account(request: Request, user: SignedIn) -> Response:
    return page(request, user, "console/account.html", {"errors": {}, "error": None})


def _enrolment(request: Request, current: signin.Current, error: str | None = None) -> dict[str, object]:
    staff = current.staff
    uri = signin.provisioning_uri(staff)
    return {
        "secret": staff.totp_secret,
        "qr": segno.make(uri, error="m").svg_data_uri(scale=4, border=2),
        "error": error,
        "form_token": csrf.token_for(settings_of(request), auth.binding(current)),
        "pending": current.row.second_factor_pending,
        "staff_name": staff.name,
    }


@router.get("/account/code")
def enrol_form(request: Request, session: DbSession, current: Pending) -> Response:
    """Enrol a one-time code: open to a signed-in staff member, and to a sign-in waiting for it."""
    if current.staff.totp_enabled_at is not None:
        return RedirectResponse(
            f"{PATH}/sign-in/code" if current.row.second_factor_pending else f"{PATH}/account",
            status_code=303,
        )
    if current.staff.totp_secret is None:
        signin.start_enrolment(session, current.staff)
    user = None if current.row.second_factor_pending else Staffer(current)
    return page(request, user, "console/enrol.html", _enrolment(request, current))


@router.post("/account/code")
def enrol_confirm(
    request: Request,
    session: DbSession,
    current: Pending,
    otp: Annotated[str, Form(max_length=16)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not csrf.check(settings_of(request), auth.binding(current), csrf_token):
        raise csrf.CsrfRefused("The form has expired; reload the page")
    try:
        signin.confirm_enrolment(session, current.actor, current.staff, otp)
    except LoanfundError as exc:
        error, _ = errors_of(request, exc)
        user = None if current.row.second_factor_pending else Staffer(current)
        return page(
            request,
            user,
            "console/enrol.html",
            _enrolment(request, current, error),
            status_code=exc.status_code,
        )
    current.row.second_factor_pending = False
    return done(f"{PATH}/account", "enrolled")


@router.post("/account/password")
def change_password(
    request: Request,
    session: DbSession,
    user: auth.Posting,
    current_password: Annotated[str, Form(max_length=1024)] = "",
    new_password: Annotated[str, Form(max_length=1024)] = "",
    new_password_again: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    settings = settings_of(request)
    gettext = gettext_for(request)
    errors: dict[str, str] = {}
    if not signin.password_matches(user.current.staff, current_password):
        errors["current_password"] = sentence("password_wrong", gettext)
    elif new_password != new_password_again:
        errors["new_password_again"] = sentence("password_mismatch", gettext)
    else:
        try:
            signin.set_password(session, settings, user.actor, user.current.staff, new_password)
        except InvalidInput as exc:
            errors["new_password"] = sentence(
                exc.code, gettext, {"min_length": settings.console_password_min_length}
            )
    if errors:
        return page(request, user, "console/account.html", {"errors": errors, "error": None}, status_code=422)
    response = done(f"{PATH}/sign-in", "password")
    response.delete_cookie(COOKIE, path=PATH)
    return response
