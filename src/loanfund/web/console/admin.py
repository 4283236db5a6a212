"""The audit log (every role reads it) and the admin's pages: staff, their roles, sign-ins and keys.

A key is shown once, on the page that answers its issue, and never again (only its prefix is stored in
the clear). Deactivating a staff member, setting their password or resetting their one-time code ends
every session they have. Every change goes through `staff.service` / `staff.signin` and is audited.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.audit.service import list_records
from loanfund.banks.models import Bank
from loanfund.core.db import DbSession
from loanfund.core.errors import Forbidden, LoanfundError
from loanfund.staff import service as staff_service
from loanfund.staff import signin
from loanfund.staff.models import Role, Staff

from .auth import PATH, Admin, Posting, Reader, Staffer, settings_of
from .render import done, errors_of, page

router = APIRouter(prefix=PATH, include_in_schema=False)
AUDIT_PAGE = 100


# --- the audit log -----------------------------------------------------------------------------------------


def _start_of(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(), tzinfo=UTC)


@router.get("/audit")
def audit_log(
    request: Request,
    session: DbSession,
    user: Reader,
    entity_type: Annotated[str, Query(max_length=32)] = "",
    entity_id: Annotated[str, Query(max_length=64)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    actor_kind: Annotated[str, Query(max_length=16)] = "",
    since: date | None = None,
    until: date | None = None,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    rows = list_records(
        session,
        entity_type=entity_type or None,
        entity_id=entity_id or None,
        action=action or None,
        actor_kind=actor_kind or None,
        actor_id=None,
        since=_start_of(since),
        until=_start_of(until + timedelta(days=1)) if until else None,
        after_id=before,
        limit=AUDIT_PAGE + 1,
    )
    filters = {
        "entity_type": entity_type,
        "entity_id": entity_id,
        "action": action,
        "actor_kind": actor_kind,
        "since": since or "",
        "until": until or "",
    }
    more = len(rows) > AUDIT_PAGE
    rows = rows[:AUDIT_PAGE]
    older = None
    if more and rows:
        older = "?" + "&".join(f"{k}={v}" for k, v in {**filters, "before": rows[-1].id}.items() if v)
    return page(request, user, "console/audit.html", {"rows": rows, "filters": filters, "older": older})


# --- staff and keys ---------------------------------------------------------------------------------


def _admin_context(session: Session, **extra: Any) -> dict[str, Any]:
    staff = list(session.scalars(select(Staff).order_by(Staff.id)))
    keys = staff_service.list_keys(session, bank_id=None, staff_id=None, after_id=None, limit=500)
    banks = list(session.scalars(select(Bank).order_by(Bank.code)))
    return {
        "staff": staff,
        "keys": keys,
        "banks": banks,
        "staff_names": {s.id: s.name for s in staff},
        "bank_codes": {b.id: b.code for b in banks},
        "roles": list(Role),
        "issued": None,
        "error": None,
        "errors": {},
        "form": {},
        **extra,
    }


@router.get("/admin/staff")
def staff_page(request: Request, session: DbSession, user: Admin) -> Response:
    return page(request, user, "console/admin.html", _admin_context(session))


def _admin_post(user: Staffer) -> None:
    if not user.may(Role.admin):
        raise Forbidden("This needs the admin role", code="role_required")


def _refused(
    request: Request, session: Session, user: Staffer, exc: LoanfundError, form: dict[str, str]
) -> Response:
    session.rollback()
    error, errors = errors_of(request, exc)
    context = _admin_context(session, error=error, errors=errors, form=form)
    return page(request, user, "console/admin.html", context, status_code=exc.status_code)


@router.post("/admin/staff")
def create_staff(
    request: Request,
    session: DbSession,
    user: Posting,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    role: Annotated[Role, Form()],
    login: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    _admin_post(user)
    try:
        staff = staff_service.create_staff(
            session, user.actor, name=name.strip(), role=role, login=login or None
        )
        if password:
            signin.set_password(session, settings_of(request), user.actor, staff, password)
    except LoanfundError as exc:
        return _refused(request, session, user, exc, {"name": name, "role": role.value, "login": login})
    return done(f"{PATH}/admin/staff", "staff_created")


@router.post("/admin/staff/{staff_id}")
def change_staff(
    request: Request,
    session: DbSession,
    user: Posting,
    staff_id: int,
    action: Annotated[str, Form(max_length=16)],
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    """`action` = deactivate | activate | password | totp_reset."""
    _admin_post(user)
    try:
        staff = staff_service.get_staff(session, staff_id)
        if action in ("deactivate", "activate"):
            staff_service.set_staff_active(session, user.actor, staff, action == "activate")
        elif action == "password":
            signin.set_password(session, settings_of(request), user.actor, staff, password)
        elif action == "totp_reset":
            signin.reset_totp(session, user.actor, staff)
            return done(f"{PATH}/admin/staff", "totp_reset")
        else:
            raise LoanfundError("Unknown action", code="validation_error", status_code=422)
    except LoanfundError as exc:
        return _refused(request, session, user, exc, {})
    return done(f"{PATH}/admin/staff", "staff_changed")


@router.post("/admin/keys")
def issue_key(
    request: Request,
    session: DbSession,
    user: Posting,
    owner: Annotated[str, Form(pattern=r"^(staff|bank):[0-9]{1,18}$")],
    label: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Issue a key for a staff member or a bank: the answer shows it once."""
    _admin_post(user)
    kind, _, raw_id = owner.partition(":")
    try:
        if kind == "staff":
            issued = staff_service.issue_key(
                session,
                settings_of(request),
                user.actor,
                staff=staff_service.get_staff(session, int(raw_id)),
                label=label or None,
            )
        else:
            from loanfund.banks import service as bank_service

            bank = bank_service.get_bank(session, int(raw_id))
            issued = staff_service.issue_key(
                session, settings_of(request), user.actor, bank=bank, label=label or None
            )
    except LoanfundError as exc:
        return _refused(request, session, user, exc, {})
    context = _admin_context(session, issued=issued)
    return page(request, user, "console/admin.html", context, status_code=201)


@router.post("/admin/keys/{key_id}/revoke")
def revoke_key(request: Request, session: DbSession, user: Posting, key_id: int) -> Response:
    _admin_post(user)
    try:
        staff_service.revoke_key(session, user.actor, staff_service.get_key(session, key_id))
    except LoanfundError as exc:
        return _refused(request, session, user, exc, {})
    return done(f"{PATH}/admin/staff", "key_revoked")
