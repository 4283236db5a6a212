"""The portal's pages. Thin: parse the form into the API's schema, call the service, render."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from loanfund.applications import service
from loanfund.applications.router import Today, submit
from loanfund.applications.schemas import (
    APPLICATION_NO_PATTERN,
    ApplicationCreate,
    ApplicationCreated,
    ApplicationStatusRead,
)
from loanfund.banks import repository as bank_repository
from loanfund.banks.schemas import PartnerBankRead
from loanfund.core.auth import SettingsDep
from loanfund.core.config import Settings
from loanfund.core.db import DbSession
from loanfund.core.errors import LoanfundError
from loanfund.core.idempotency import Idempotency
from loanfund.core.ratelimit import check_token_failures, count_token_failure, limit_public
from loanfund.rates import service as rates
from loanfund.rates.models import LprRate
from loanfund.web import csrf
from loanfund.web.messages import error_sentence, field_errors, validation_errors
from loanfund.web.portal.timeline import timeline
from loanfund.web.templating import Templates, gettext_for

HERE = Path(__file__).parent
STATIC = HERE / "static"
templates = Templates(HERE / "templates")
router = APIRouter(include_in_schema=False, dependencies=[Depends(limit_public)])

NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_APP_NO = re.compile(APPLICATION_NO_PATTERN)
_IN_PROGRESS_WAIT_S = 10.0
INDICATORS = (
    "invention_patents",
    "utility_model_patents",
    "software_copyrights",
    "rd_spending",
    "revenue",
    "total_staff",
    "rd_staff",
    "senior_talent",
)
FormData = Mapping[str, str]


# --- the programme -------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def programme(request: Request, session: DbSession, settings: SettingsDep, day: Today) -> Response:
    tables = rates.list_credit_line_tables(session)
    in_force = max((d for d in tables if d <= day), default=None)
    lpr: LprRate | None
    try:
        lpr = rates.lpr_on(session, day)
    except LoanfundError:  # no rate entered yet: the page says the rule without the figure
        lpr = None
    return templates.render(
        request,
        "portal/index.html",
        {
            "lines": tables[in_force] if in_force else None,
            "lines_since": in_force,
            "lpr_pct": lpr.rate_pct if lpr else None,
            "lpr_since": lpr.effective_date if lpr else None,
            "cap_pct": rates.max_rate_on(session, settings, day) if lpr else None,
            "banks": _banks(session),
            "today": day,
        },
    )


def _banks(session: Session) -> list[PartnerBankRead]:
    return [PartnerBankRead.of(b) for b in bank_repository.list_public(session, after_id=None, limit=500)]


# --- applying ------------------------------------------------------------------------------------


def _new_nonce() -> str:
    return secrets.token_urlsafe(24)


def _apply_form(
    request: Request,
    session: Session,
    values: FormData,
    errors: Mapping[str, str],
    *,
    nonce: str,
    status_code: int = 200,
    message: str | None = None,
) -> Response:
    return templates.render(
        request,
        "portal/apply.html",
        {
            "values": values,
            "errors": errors,
            "nonce": nonce,
            "banks": [b for b in _banks(session) if b.accepting_applications],
            "message": message,
        },
        status_code=status_code,
    )


@router.get("/apply", response_class=HTMLResponse)
def apply_form(
    request: Request, session: DbSession, bank: Annotated[str | None, Query(max_length=32)] = None
) -> Response:
    return _apply_form(request, session, {"bank_code": bank or ""}, {}, nonce=_new_nonce())


def _amount(text: str) -> str:
    """What a person types as an amount, as the API reads it: `1,000,000` and `1 000 000` are 1000000."""
    return re.sub(r"[,\s，]", "", text)


def application_body(form: FormData) -> dict[str, Any]:
    """The form, shaped as the API's `ApplicationCreate`; an empty field is left out (so: required)."""

    def put(target: dict[str, Any], key: str, name: str, amount: bool = False) -> None:
        value = form.get(name, "").strip()
        if value:
            target[key] = _amount(value) if amount else value

    contact: dict[str, Any] = {}
    put(contact, "name", "contact_name")
    put(contact, "phone", "contact_phone")
    put(contact, "email", "contact_email")
    indicators: dict[str, Any] = {"high_tech_certificate": form.get("high_tech_certificate") == "true"}
    for name in INDICATORS:
        put(indicators, name, name, amount=name in ("rd_spending", "revenue"))
    body: dict[str, Any] = {"contact": contact, "indicators": indicators}
    put(body, "credit_code", "credit_code")
    put(body, "requested_amount", "requested_amount", amount=True)
    put(body, "term_months", "term_months")
    put(body, "bank_code", "bank_code")
    return body


def form_field(location: tuple[Any, ...] | str) -> str:
    """The form field of a schema location: ("contact", "name") or "contact.name" → contact_name,
    ("indicators", "rd_staff") → rd_staff."""
    parts = [str(p) for p in (location.split(".") if isinstance(location, str) else location)]
    parts = [p for p in parts if p not in ("body",)]
    if not parts:
        return "form"
    if parts[0] == "contact" and len(parts) > 1:
        return f"contact_{parts[1]}"
    if parts[0] == "indicators" and len(parts) > 1:
        return parts[1]
    return parts[0]


@router.post("/apply", response_class=HTMLResponse)
def apply_submit(
    request: Request, session: DbSession, settings: SettingsDep, day: Today, form: csrf.FormData
) -> Response:
    gettext = gettext_for(request)
    nonce = form.get("nonce", "")
    if not NONCE.match(nonce):
        nonce = _new_nonce()
    if not csrf.is_valid(request, form):
        # a new token comes with the page; the answers are kept, nothing was submitted
        message = error_sentence(csrf.CsrfRefused("csrf"), gettext)
        return _apply_form(request, session, form, {}, nonce=nonce, status_code=403, message=message)
    try:
        data = ApplicationCreate.model_validate(application_body(form))
    except ValidationError as err:
        errors = validation_errors(err, gettext, form_field)
        return _apply_form(request, session, form, errors, nonce=nonce, status_code=422)
    # the form's nonce is the idempotency key: a retry or a double click replays the first answer
    idem = Idempotency(session, settings, None, f"portal:{nonce}", "POST", "/apply")
    answer = submit(session, settings, data, day, idem, wait_s=_IN_PROGRESS_WAIT_S)
    body = orjson.loads(bytes(answer.body))
    if answer.status_code != 201:
        # a refusal by a business rule: shown beside its field; the corrected form is a new submission
        error = LoanfundError(
            body["error"]["message"],
            code=body["error"]["code"],
            status_code=answer.status_code,
            details=body["error"]["details"],
        )
        errors = field_errors(error, gettext, form_field, max_term_months=settings.max_term_months)
        refusal = None if errors else error_sentence(error, gettext)
        return _apply_form(
            request,
            session,
            form,
            errors,
            nonce=_new_nonce(),
            status_code=answer.status_code,
            message=refusal,
        )
    return templates.render(
        request,
        "portal/confirmation.html",
        {"app": ApplicationCreated.model_validate(body), "replayed": "idempotent-replayed" in answer.headers},
    )


# --- the receipt ---------------------------------------------------------------------------------


@router.post("/receipt")
def receipt(request: Request, session: DbSession, settings: SettingsDep, form: csrf.FormData) -> Response:
    """The confirmation as a text file to keep (the status token included: it is the applicant's)."""
    csrf.verify(request, form)
    app = _with_token(request, session, settings, form)
    if app is None:
        return _status_form(request, form, not_found=True, status_code=404)
    text = templates.render_text(request, "portal/receipt.txt", {"app": app, "token": form["token"].strip()})
    return Response(
        text.encode("utf-8"),
        media_type="text/plain; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="receipt-{app.application_no}.txt"',
            "Cache-Control": "no-store",
        },
    )


# --- the status ----------------------------------------------------------------------------------


def _status_form(
    request: Request,
    values: FormData,
    *,
    not_found: bool = False,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
    message: str | None = None,
) -> Response:
    return templates.render(
        request,
        "portal/status_form.html",
        {"values": values, "not_found": not_found, "errors": errors or {}, "message": message},
        status_code=status_code,
    )


@router.get("/status", response_class=HTMLResponse)
def status_form(
    request: Request, application_no: Annotated[str | None, Query(max_length=32)] = None
) -> Response:
    return _status_form(request, {"application_no": application_no or ""})


def _with_token(
    request: Request, session: Session, settings: Settings, form: FormData
) -> ApplicationStatusRead | None:
    """The application if the form's number and token match; a wrong token counts against the address's
    budget of wrong tokens, exactly as on the API."""
    check_token_failures(request)
    number = form.get("application_no", "").strip().upper()
    token = form.get("token", "").strip()
    app = service.get_with_token(session, settings, number, token) if number and token else None
    if app is None:
        count_token_failure(request)
        return None
    return ApplicationStatusRead.of(app, service.loan_summary(session, app.id))


@router.post("/status", response_class=HTMLResponse)
def status_show(request: Request, session: DbSession, settings: SettingsDep, form: csrf.FormData) -> Response:
    gettext = gettext_for(request)
    if not csrf.is_valid(request, form):
        message = error_sentence(csrf.CsrfRefused("csrf"), gettext)
        return _status_form(request, form, status_code=403, message=message)
    errors = {}
    if not form.get("application_no", "").strip():
        errors["application_no"] = gettext("Enter the application number, such as KV2026000123.")
    elif not _APP_NO.match(form["application_no"].strip().upper()):
        errors["application_no"] = gettext(
            "An application number is KV followed by digits, such as KV2026000123."
        )
    if not form.get("token", "").strip():
        errors["token"] = gettext("Enter the status token you were given when you applied.")
    if errors:
        return _status_form(request, form, errors=errors, status_code=422)
    app = _with_token(request, session, settings, form)
    if app is None:
        return _status_form(request, form, not_found=True, status_code=404)
    context = {"app": app, "token": form["token"].strip(), "steps": timeline(app)}
    return templates.render(request, "portal/status.html", context)
