"""Queries on status reports and their discrepancies, and the one answer the loan write path asks of
them: up to which date a bank's months are closed. Scoping by the caller happens here."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from loanfund.core.auth import Principal
from loanfund.loans.models import Loan, LoanEvent
from loanfund.loans.state import EventKind
from loanfund.status_reports.models import Discrepancy, StatusReport


def closed_through(session: Session, bank_id: int) -> date | None:
    """The last month-end the bank has reported: its events on or before it are final."""
    return closed_through_many(session, [bank_id])[bank_id]


def closed_through_many(session: Session, bank_ids: Collection[int]) -> dict[int, date | None]:
    """`closed_through` of each of the banks, in one query."""
    stmt = (
        select(StatusReport.bank_id, func.max(StatusReport.month_end))
        .where(StatusReport.bank_id.in_(sorted(bank_ids)))
        .group_by(StatusReport.bank_id)
    )
    found: dict[int, date | None] = {row[0]: row[1] for row in session.execute(stmt)}
    return {bank_id: found.get(bank_id) for bank_id in bank_ids}


def readable(principal: Principal) -> Select[StatusReport]:
    """Reports the caller may see: all for bureau staff, only its own for a bank."""
    stmt = select(StatusReport)
    if principal.is_bank:
        stmt = stmt.where(StatusReport.bank_id == principal.bank_id)
    return stmt


def get_readable(session: Session, principal: Principal, report_id: int) -> StatusReport | None:
    return session.scalar(readable(principal).where(StatusReport.id == report_id))


def list_readable(
    session: Session, principal: Principal, *, bank_id: int | None, after_id: int | None, limit: int
) -> list[StatusReport]:
    stmt = readable(principal).order_by(StatusReport.id).limit(limit)
    if bank_id is not None:
        stmt = stmt.where(StatusReport.bank_id == bank_id)
    if after_id is not None:
        stmt = stmt.where(StatusReport.id > after_id)
    return list(session.scalars(stmt))


def discrepancies_of(session: Session, report_id: int) -> list[Discrepancy]:
    stmt = select(Discrepancy).where(Discrepancy.report_id == report_id).order_by(Discrepancy.id)
    return list(session.scalars(stmt))


def list_discrepancies(
    session: Session,
    *,
    bank_id: int | None,
    month_end: date | None,
    kind: str | None,
    after_id: int | None,
    limit: int,
) -> list[Discrepancy]:
    stmt = select(Discrepancy).order_by(Discrepancy.id).limit(limit)
    if bank_id is not None:
        stmt = stmt.where(Discrepancy.bank_id == bank_id)
    if month_end is not None:
        stmt = stmt.where(Discrepancy.month_end == month_end)
    if kind is not None:
        stmt = stmt.where(Discrepancy.kind == kind)
    if after_id is not None:
        stmt = stmt.where(Discrepancy.id > after_id)
    return list(session.scalars(stmt))


def loans_by_ref(session: Session, bank_id: int) -> dict[str, Loan]:
    """Every loan of the bank, by the bank's reference."""
    return {loan.bank_loan_ref: loan for loan in session.scalars(select(Loan).where(Loan.bank_id == bank_id))}


def outstanding_as_of(session: Session, bank_id: int, day: date) -> dict[int, int]:
    """Event-derived outstanding principal of each of the bank's loans at the end of `day`."""
    signed = case(
        (LoanEvent.kind == EventKind.disbursement, LoanEvent.principal_fen),
        (LoanEvent.kind == EventKind.repayment, -LoanEvent.principal_fen),
        else_=0,
    )
    rows = session.execute(
        select(LoanEvent.loan_id, func.sum(signed))
        .where(LoanEvent.bank_id == bank_id, LoanEvent.event_date <= day)
        .group_by(LoanEvent.loan_id)
    )
    return {loan_id: int(total or 0) for loan_id, total in rows}
