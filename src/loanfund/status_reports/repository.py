"""Queries on status reports and their discrepancies, and the one answer the loan write path asks of
them: up to which date a bank's months are closed. Scoping by the caller happens here."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, timedelta

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from loanfund.core.auth import Principal
from loanfund.loans.models import Loan, LoanEvent
from loanfund.loans.state import EventKind
from loanfund.status_reports.models import Discrepancy, MonthReopening, StatusReport

ONE_DAY = timedelta(days=1)


def closed_through(session: Session, bank_id: int) -> date | None:
    """The date up to which the bank's events are final: its last reported month-end, or, while an
    officer has reopened one of its months, the day before the earliest reopened month."""
    return closed_through_many(session, [bank_id])[bank_id]


def closed_through_many(session: Session, bank_ids: Collection[int]) -> dict[int, date | None]:
    """`closed_through` of each of the banks, in one query."""
    wanted = sorted(bank_ids)
    reported = (
        select(StatusReport.bank_id, func.max(StatusReport.month_end).label("last"))
        .where(StatusReport.bank_id.in_(wanted))
        .group_by(StatusReport.bank_id)
        .subquery()
    )
    reopened = (
        select(MonthReopening.bank_id, func.min(MonthReopening.month_end).label("first"))
        .where(MonthReopening.bank_id.in_(wanted), MonthReopening.closed_at.is_(None))
        .group_by(MonthReopening.bank_id)
        .subquery()
    )
    stmt = select(reported.c.bank_id, reported.c.last, reopened.c.first).outerjoin(
        reopened, reopened.c.bank_id == reported.c.bank_id
    )
    found: dict[int, date | None] = {}
    for bank_id, last, first_reopened in session.execute(stmt):
        found[bank_id] = (
            last if first_reopened is None else min(last, first_reopened.replace(day=1) - ONE_DAY)
        )
    return {bank_id: found.get(bank_id) for bank_id in bank_ids}


def last_reported(session: Session, bank_id: int) -> date | None:
    """The bank's last reported month-end (whatever is reopened)."""
    return session.scalar(select(func.max(StatusReport.month_end)).where(StatusReport.bank_id == bank_id))


def latest_version(session: Session, bank_id: int, month_end: date) -> StatusReport | None:
    """The month's report as last filed (its highest version), if any."""
    stmt = (
        select(StatusReport)
        .where(StatusReport.bank_id == bank_id, StatusReport.month_end == month_end)
        .order_by(StatusReport.version.desc())
        .limit(1)
    )
    return session.scalar(stmt)


def open_reopening(
    session: Session, bank_id: int, month_end: date, *, lock: bool = False
) -> MonthReopening | None:
    stmt = select(MonthReopening).where(
        MonthReopening.bank_id == bank_id,
        MonthReopening.month_end == month_end,
        MonthReopening.closed_at.is_(None),
    )
    if lock:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def list_reopenings(
    session: Session,
    principal: Principal,
    *,
    bank_id: int | None,
    open_only: bool | None,
    after_id: int | None,
    limit: int,
) -> list[MonthReopening]:
    stmt = select(MonthReopening).order_by(MonthReopening.id).limit(limit)
    if principal.is_bank:
        stmt = stmt.where(MonthReopening.bank_id == principal.bank_id)
    if bank_id is not None:
        stmt = stmt.where(MonthReopening.bank_id == bank_id)
    if open_only is not None:
        stmt = stmt.where(
            MonthReopening.closed_at.is_(None) if open_only else MonthReopening.closed_at.is_not(None)
        )
    if after_id is not None:
        stmt = stmt.where(MonthReopening.id > after_id)
    return list(session.scalars(stmt))


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
) -> list[tuple[Discrepancy, int]]:
    """Discrepancies with the version of the report that found them."""
    stmt = (
        select(Discrepancy, StatusReport.version)
        .join(StatusReport, StatusReport.id == Discrepancy.report_id)
        .order_by(Discrepancy.id)
        .limit(limit)
    )
    if bank_id is not None:
        stmt = stmt.where(Discrepancy.bank_id == bank_id)
    if month_end is not None:
        stmt = stmt.where(Discrepancy.month_end == month_end)
    if kind is not None:
        stmt = stmt.where(Discrepancy.kind == kind)
    if after_id is not None:
        stmt = stmt.where(Discrepancy.id > after_id)
    return [(d, v) for d, v in session.execute(stmt)]


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


def reported_months(session: Session, bank_id: int, *, limit: int) -> list[date]:
    """The month-ends the bank has reported (closed), latest first."""
    stmt = (
        select(StatusReport.month_end)
        .where(StatusReport.bank_id == bank_id)
        .distinct()
        .order_by(StatusReport.month_end.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))
