from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session, selectinload

from loanfund.core import bulk
from loanfund.core.auth import Principal
from loanfund.enterprises.models import Enterprise
from loanfund.loans.models import EVENTS, Loan
from loanfund.loans.state import Event, LoanState


def readable(principal: Principal) -> Select[Loan]:
    """Loans the caller may see: all for bureau staff, its own for a bank."""
    stmt = select(Loan)
    if principal.is_bank:
        stmt = stmt.where(Loan.bank_id == principal.bank_id)
    return stmt


def get_readable(
    session: Session, principal: Principal, loan_id: int, *, with_events: bool = False
) -> Loan | None:
    stmt = readable(principal).where(Loan.id == loan_id)
    if with_events:
        stmt = stmt.options(selectinload(Loan.events))
    return session.scalar(stmt)


def by_ref(session: Session, bank_id: int, bank_loan_ref: str, *, for_update: bool = False) -> Loan | None:
    stmt = select(Loan).where(Loan.bank_id == bank_id, Loan.bank_loan_ref == bank_loan_ref)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def lock(session: Session, loan: Loan) -> None:
    """Serialise writers of one loan and reload it: a PostgreSQL row lock (SQLite has one writer)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(Loan).where(Loan.id == loan.id).with_for_update().execution_options(populate_existing=True)
        )


def events_by_refs(
    session: Session, refs: Mapping[int, Collection[str]]
) -> dict[tuple[int, str], tuple[int, int]]:
    """(bank, event reference) → (event id, loan id) for those of each bank's `refs` it has already used,
    in one statement."""
    wanted = [
        (EVENTS.c.bank_id == bank_id) & bulk.one_of(session, EVENTS, "bank_event_ref", bank_refs)
        for bank_id, bank_refs in sorted(refs.items())
        if bank_refs
    ]
    if not wanted:
        return {}
    e = EVENTS.c
    stmt = select(e.bank_id, e.bank_event_ref, e.id, e.loan_id).where(or_(*wanted))
    return {(bank, ref): (event_id, loan_id) for bank, ref, event_id, loan_id in session.execute(stmt).all()}


def search(
    session: Session,
    principal: Principal,
    *,
    state: LoanState | None,
    bank_id: int | None,
    credit_code: str | None,
    start_from: date | None,
    start_to: date | None,
    after_id: int | None,
    limit: int,
) -> list[tuple[Loan, str]]:
    stmt = (
        readable(principal)
        .join(Enterprise, Enterprise.id == Loan.enterprise_id)
        .add_columns(Enterprise.credit_code)
        .order_by(Loan.id)
        .limit(limit)
    )
    if state is not None:
        stmt = stmt.where(Loan.state == state)
    if bank_id is not None:
        stmt = stmt.where(Loan.bank_id == bank_id)
    if credit_code is not None:
        stmt = stmt.where(Enterprise.credit_code == credit_code)
    if start_from is not None:
        stmt = stmt.where(Loan.start_date >= start_from)
    if start_to is not None:
        stmt = stmt.where(Loan.start_date <= start_to)
    if after_id is not None:
        stmt = stmt.where(Loan.id > after_id)
    return [(row[0], row[1]) for row in session.execute(stmt)]


def credit_code_of(session: Session, loan: Loan) -> str:
    code = session.scalar(select(Enterprise.credit_code).where(Enterprise.id == loan.enterprise_id))
    assert code is not None
    return code


def stored_events(session: Session, loan_id: int, *, excluding: Collection[int] = ()) -> list[Event]:
    """A loan's stored events in posting order, but those with an id in `excluding`."""
    e = EVENTS.c
    rows = session.execute(
        select(e.id, e.kind, e.event_date, e.principal_fen, e.interest_fen, e.days_past_due)
        .where(e.loan_id == loan_id)
        .order_by(e.id)
    ).all()
    return [
        Event(kind, day, principal, interest, dpd or 0)
        for event_id, kind, day, principal, interest, dpd in rows
        if event_id not in excluding
    ]
