from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from loanfund.banks.models import Bank, BankStatus
from loanfund.core.auth import Principal


def readable(principal: Principal) -> Select[Bank]:
    """Banks the caller may see: all for bureau staff, only its own for a bank."""
    stmt = select(Bank)
    if principal.is_bank:
        stmt = stmt.where(Bank.id == principal.bank_id)
    return stmt


def get_readable(session: Session, principal: Principal, bank_id: int) -> Bank | None:
    return session.scalar(readable(principal).where(Bank.id == bank_id))


def list_readable(
    session: Session, principal: Principal, *, status: BankStatus | None, after_id: int | None, limit: int
) -> list[Bank]:
    stmt = readable(principal).order_by(Bank.id).limit(limit)
    if status is not None:
        stmt = stmt.where(Bank.status == status)
    if after_id is not None:
        stmt = stmt.where(Bank.id > after_id)
    return list(session.scalars(stmt))


def list_public(session: Session, *, after_id: int | None, limit: int) -> list[Bank]:
    """Every partner bank, for the public list (the router shows only public details)."""
    stmt = select(Bank).order_by(Bank.id).limit(limit)
    if after_id is not None:
        stmt = stmt.where(Bank.id > after_id)
    return list(session.scalars(stmt))


def by_code(session: Session, code: str) -> Bank | None:
    return session.scalar(select(Bank).where(Bank.code == code))
