from __future__ import annotations

from datetime import date

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, joinedload

from loanfund.applications.models import Application, ApplicationStatus
from loanfund.banks.models import Bank
from loanfund.core.auth import Principal


def _loaded() -> Select[Application]:
    return select(Application).options(joinedload(Application.bank), joinedload(Application.enterprise))


def _routed_to(stmt: Select[Application], bank_id: int | None) -> Select[Application]:
    """A bank sees the applications routed to it that passed the eligibility check (an ineligible
    application never reaches a bank)."""
    return stmt.where(Application.bank_id == bank_id, Application.status != ApplicationStatus.ineligible)


def readable(principal: Principal) -> Select[Application]:
    """Applications the caller may see: all for bureau staff, only those routed to it for a bank."""
    stmt = _loaded()
    return _routed_to(stmt, principal.bank_id) if principal.is_bank else stmt


def get_readable(
    session: Session, principal: Principal, application_no: str, *, for_update: bool = False
) -> Application | None:
    stmt = readable(principal).where(Application.application_no == application_no)
    if for_update:
        stmt = stmt.with_for_update(of=Application)
    return session.scalar(stmt)


def by_no(session: Session, application_no: str, *, for_update: bool = False) -> Application | None:
    stmt = _loaded().where(Application.application_no == application_no)
    if for_update:
        stmt = stmt.with_for_update(of=Application)
    return session.scalar(stmt)


def for_bank(
    session: Session, bank_id: int, application_no: str, *, for_update: bool = False
) -> Application | None:
    stmt = _routed_to(_loaded(), bank_id).where(Application.application_no == application_no)
    if for_update:
        stmt = stmt.with_for_update(of=Application)
    return session.scalar(stmt)


def list_readable(
    session: Session,
    principal: Principal,
    *,
    status: ApplicationStatus | None,
    bank_code: str | None,
    credit_code: str | None,
    grade: str | None,
    applied_from: date | None,
    applied_to: date | None,
    after_id: int | None,
    limit: int,
) -> list[Application]:
    stmt = readable(principal).order_by(Application.id).limit(limit)
    if status is not None:
        stmt = stmt.where(Application.status == status)
    if bank_code:
        stmt = stmt.where(Application.bank.has(Bank.code == bank_code))
    if credit_code:
        stmt = stmt.where(Application.credit_code == credit_code)
    if grade:
        stmt = stmt.where(Application.grade == grade)
    if applied_from is not None:
        stmt = stmt.where(Application.application_date >= applied_from)
    if applied_to is not None:
        stmt = stmt.where(Application.application_date <= applied_to)
    if after_id is not None:
        stmt = stmt.where(Application.id > after_id)
    return list(session.scalars(stmt))
