from __future__ import annotations

from collections.abc import Collection
from datetime import date

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from loanfund.core import bulk
from loanfund.core.auth import Principal
from loanfund.enterprises.models import Enterprise
from loanfund.loans.models import DRAFT_COLUMNS, EVENTS, LOANS, Loan, LoanDraft, LoanEvent
from loanfund.loans.state import LoanState


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


def drafts_by_refs_locked(session: Session, bank_id: int, refs: Collection[str]) -> dict[str, LoanDraft]:
    """A bank's loans with these references as plain drafts, locked (in id order, so that two
    transactions locking overlapping sets cannot deadlock)."""
    if not refs:
        return {}
    stmt = (
        select(*(LOANS.c[c] for c in DRAFT_COLUMNS))
        .where(LOANS.c.bank_id == bank_id, bulk.one_of(session, LOANS, "bank_loan_ref", refs))
        .order_by(LOANS.c.id)
        .with_for_update()
    )
    # all rows fetched at once (iterating a result fetches them one by one); columns in field order
    drafts = (LoanDraft(*row) for row in session.execute(stmt).all())
    return {d.bank_loan_ref: d for d in drafts}


def lock(session: Session, loan: Loan) -> None:
    """Serialise writers of one loan and reload it: a PostgreSQL row lock (SQLite has one writer)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(Loan).where(Loan.id == loan.id).with_for_update().execution_options(populate_existing=True)
        )


def event_by_ref(session: Session, bank_id: int, bank_event_ref: str) -> LoanEvent | None:
    return session.scalar(
        select(LoanEvent).where(LoanEvent.bank_id == bank_id, LoanEvent.bank_event_ref == bank_event_ref)
    )


def events_by_refs(session: Session, bank_id: int, refs: Collection[str]) -> dict[str, tuple[int, int]]:
    """Event reference → (event id, loan id) for those of `refs` the bank has already used."""
    if not refs:
        return {}
    stmt = select(LoanEvent.bank_event_ref, LoanEvent.id, LoanEvent.loan_id).where(
        LoanEvent.bank_id == bank_id, bulk.one_of(session, EVENTS, "bank_event_ref", refs)
    )
    return {ref: (event_id, loan_id) for ref, event_id, loan_id in session.execute(stmt).all()}


def events_of(session: Session, loan_id: int) -> list[LoanEvent]:
    return list(session.scalars(select(LoanEvent).where(LoanEvent.loan_id == loan_id).order_by(LoanEvent.id)))


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
