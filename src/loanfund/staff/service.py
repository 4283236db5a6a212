"""Bureau staff and API keys (for staff and for banks). Keys are shown once and stored as HMACs."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.audit.service import Actor, record, snapshot
from loanfund.banks.models import Bank
from loanfund.core.auth import KEYS
from loanfund.core.config import Settings
from loanfund.core.db import utcnow
from loanfund.core.errors import Conflict, NotFound
from loanfund.core.security import display_prefix, hash_secret, new_secret
from loanfund.staff import signin
from loanfund.staff.models import ApiKey, Role, Staff


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # the plain key: returned to the caller once, never stored


def create_staff(session: Session, actor: Actor, *, name: str, role: Role, login: str | None = None) -> Staff:
    """A staff member; with `login`, one who can sign in to the console once given a password."""
    if login is not None:
        login = signin.check_login(login)
        if signin.by_login(session, login) is not None:
            raise Conflict("This login is taken", code="login_taken")
    staff = Staff(name=name, role=role, active=True, login=login)
    session.add(staff)
    session.flush()
    record(
        session,
        actor,
        "staff.create",
        "staff",
        staff.id,
        after=snapshot(staff, ["name", "role", "active", "login"]),
    )
    return staff


def get_staff(session: Session, staff_id: int) -> Staff:
    staff = session.get(Staff, staff_id)
    if staff is None:
        raise NotFound("No such staff member", code="staff_not_found")
    return staff


def set_staff_active(session: Session, actor: Actor, staff: Staff, active: bool) -> Staff:
    if staff.active == active:
        raise Conflict("Nothing to change", code="staff_status_unchanged")
    before = snapshot(staff, ["name", "role", "active"])
    staff.active = active
    if not active:
        signin.end_sessions(session, staff.id)
    session.flush()
    KEYS.clear()
    action = "staff.activate" if active else "staff.deactivate"
    record(
        session,
        actor,
        action,
        "staff",
        staff.id,
        before=before,
        after=snapshot(staff, ["name", "role", "active"]),
    )
    return staff


def issue_key(
    session: Session,
    settings: Settings,
    actor: Actor,
    *,
    bank: Bank | None = None,
    staff: Staff | None = None,
    label: str | None = None,
) -> IssuedKey:
    if (bank is None) == (staff is None):
        raise ValueError("a key belongs to exactly one bank or one staff member")
    secret = new_secret("lfb" if bank is not None else "lfs")
    key = ApiKey(
        key_hash=hash_secret(settings.secret_key.get_secret_value(), secret),
        prefix=display_prefix(secret),
        bank_id=bank.id if bank is not None else None,
        staff_id=staff.id if staff is not None else None,
        label=label,
    )
    session.add(key)
    session.flush()
    owner = {"bank_id": key.bank_id} if bank is not None else {"staff_id": key.staff_id}
    record(
        session, actor, "key.issue", "api_key", key.id, after={**owner, "prefix": key.prefix, "label": label}
    )
    return IssuedKey(key=key, secret=secret)


def get_key(session: Session, key_id: int) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound("No such key", code="key_not_found")
    return key


def revoke_key(session: Session, actor: Actor, key: ApiKey) -> ApiKey:
    if key.revoked_at is not None:
        raise Conflict("The key is already revoked", code="key_already_revoked")
    key.revoked_at = utcnow()
    session.flush()
    KEYS.clear()
    record(session, actor, "key.revoke", "api_key", key.id, after={"prefix": key.prefix})
    return key


def list_keys(
    session: Session, *, bank_id: int | None, staff_id: int | None, after_id: int | None, limit: int
) -> list[ApiKey]:
    stmt = select(ApiKey).order_by(ApiKey.id).limit(limit)
    if bank_id is not None:
        stmt = stmt.where(ApiKey.bank_id == bank_id)
    if staff_id is not None:
        stmt = stmt.where(ApiKey.staff_id == staff_id)
    if after_id is not None:
        stmt = stmt.where(ApiKey.id > after_id)
    return list(session.scalars(stmt))


def list_staff(session: Session, *, after_id: int | None, limit: int) -> list[Staff]:
    stmt = select(Staff).order_by(Staff.id).limit(limit)
    if after_id is not None:
        stmt = stmt.where(Staff.id > after_id)
    return list(session.scalars(stmt))
