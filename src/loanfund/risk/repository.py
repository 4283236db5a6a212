"""Queries behind the risk analytics. Nothing here knows who asks: the routers scope by caller."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Row, String, and_, case, delete, func, or_, select, type_coerce
from sqlalchemy.orm import Session

from loanfund.banks.models import Bank
from loanfund.claims.models import Claim, ClaimState, Recovery, RecoveryKind
from loanfund.loans.models import LOANS, Loan, LoanEvent
from loanfund.loans.state import EventKind
from loanfund.risk.models import BankRating, StressTestRun
from loanfund.status_reports.models import Discrepancy, StatusReport

IN_CHUNK = 1000  # ids per IN (…) list


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for i in range(0, len(ids), IN_CHUNK):
        yield ids[i : i + IN_CHUNK]


# --- the book at a date ---------------------------------------------------------------------------------

BOOK_COLUMNS = (
    "id",
    "bank_id",
    "bank_loan_ref",
    "grade",
    "industry",
    "state",
    "outstanding_fen",
    "maturity_date",
    "first_disbursed_on",
    "contract_amount_fen",
    "start_date",
    "compensated_on",
)
KEPT_STATES = ("active", "overdue", "non_performing", "compensated")


def loans_open_on(session: Session, as_of: date) -> Sequence[Any]:
    """Loans that may be covered or compensated at the end of `as_of`: first disbursed by then, neither
    settled nor written off by then, and covered or compensated now unless changed since. Plain tuples
    of `BOOK_COLUMNS` (the state as its text) and `changed`: whether a bank's event or the fund has
    changed the loan after `as_of`."""
    c = LOANS.c
    changed = or_(c.last_event_date > as_of, c.compensated_on > as_of, c.written_off_on > as_of)
    columns = [type_coerce(c[name], String) if name == "state" else c[name] for name in BOOK_COLUMNS]
    stmt = select(*columns, changed.label("changed")).where(
        c.first_disbursed_on <= as_of,
        or_(c.settled_on.is_(None), c.settled_on > as_of),
        or_(c.written_off_on.is_(None), c.written_off_on > as_of),
        or_(and_(c.state.in_(KEPT_STATES), c.outstanding_fen > 0), changed),
    )
    return session.execute(stmt).all()  # fetched at once: a row at a time costs more


def events_until(session: Session, loan_ids: Sequence[int], as_of: date) -> dict[int, list[LoanEvent]]:
    """The events of these loans dated on or before `as_of`, each loan's in posting order."""
    out: dict[int, list[LoanEvent]] = {}
    for part in _chunks(sorted(loan_ids)):
        stmt = (
            select(LoanEvent)
            .where(LoanEvent.loan_id.in_(part), LoanEvent.event_date <= as_of)
            .order_by(LoanEvent.loan_id, LoanEvent.id)
        )
        for event in session.scalars(stmt):
            out.setdefault(event.loan_id, []).append(event)
    return out


def npl_reports(session: Session, npl_days: int, as_of: date) -> list[Row[Any]]:
    """(loan id, event date, days past due) of every report, dated on or before `as_of`, that put a loan
    at or past the non-performing line."""
    stmt = select(LoanEvent.loan_id, LoanEvent.event_date, LoanEvent.days_past_due).where(
        LoanEvent.kind == EventKind.delinquency,
        LoanEvent.days_past_due >= npl_days,
        LoanEvent.event_date <= as_of,
    )
    return list(session.execute(stmt))


def observed_lives(session: Session, npl_days: int, as_of: date, matured_by: date) -> Sequence[Any]:
    """Per grade: (grade, loans observed, of which defaulted) among the loans first disbursed by `as_of`
    that either matured by `matured_by` or were reported `npl_days` or more past due by `as_of`."""
    defaulted = (
        select(LoanEvent.id)
        .where(
            LoanEvent.loan_id == Loan.id,
            LoanEvent.kind == EventKind.delinquency,
            LoanEvent.days_past_due >= npl_days,
            LoanEvent.event_date <= as_of,
        )
        .exists()
    )
    stmt = (
        select(Loan.grade, func.count(), func.coalesce(func.sum(case((defaulted, 1), else_=0)), 0))
        .where(Loan.first_disbursed_on <= as_of, or_(Loan.maturity_date <= matured_by, defaulted))
        .group_by(Loan.grade)
    )
    return session.execute(stmt).all()


def loans_first_disbursed_between(session: Session, start: date, end: date) -> list[Row[Any]]:
    """(id, bank id, bank's reference, first disbursement) of loans first disbursed within [start, end]."""
    stmt = select(Loan.id, Loan.bank_id, Loan.bank_loan_ref, Loan.first_disbursed_on).where(
        Loan.first_disbursed_on.between(start, end)
    )
    return list(session.execute(stmt))


def first_disbursement_by_bank(session: Session) -> dict[int, date]:
    """Each bank's earliest first disbursement."""
    stmt = select(Loan.bank_id, func.min(Loan.first_disbursed_on)).group_by(Loan.bank_id)
    return {bank_id: day for bank_id, day in session.execute(stmt) if day is not None}


def loan_refs(session: Session, loan_ids: Collection[int]) -> dict[int, tuple[int, str]]:
    """Loan id → (bank id, the bank's reference)."""
    out: dict[int, tuple[int, str]] = {}
    for part in _chunks(sorted(loan_ids)):
        stmt = select(Loan.id, Loan.bank_id, Loan.bank_loan_ref).where(Loan.id.in_(part))
        out.update({row.id: (row.bank_id, row.bank_loan_ref) for row in session.execute(stmt)})
    return out


# --- claims --------------------------------------------------------------------------------------------


def paid_claims(session: Session, as_of: date) -> tuple[int, int, int]:
    """(claims paid by `as_of`, the fund's payouts on them, the fund's share of what the banks have
    recovered on them by `as_of`), fen."""
    paid = session.execute(
        select(func.count(), func.coalesce(func.sum(Claim.paid_fen), 0)).where(
            Claim.state == ClaimState.paid, Claim.paid_on <= as_of
        )
    ).one()
    recovered = session.scalar(
        select(func.coalesce(func.sum(Recovery.fund_share_fen), 0))
        .join(Claim, Claim.id == Recovery.claim_id)
        .where(
            Recovery.kind == RecoveryKind.recovery,
            Recovery.reported_on <= as_of,
            Claim.state == ClaimState.paid,
            Claim.paid_on <= as_of,
        )
    )
    return int(paid[0]), int(paid[1] or 0), int(recovered or 0)


def claim_loans(session: Session, claim_ids: Collection[int]) -> dict[int, int]:
    """Claim id → its loan's id."""
    out: dict[int, int] = {}
    for part in _chunks(sorted(claim_ids)):
        stmt = select(Claim.id, Claim.loan_id).where(Claim.id.in_(part))
        out.update({row.id: row.loan_id for row in session.execute(stmt)})
    return out


def claims_paid_between(session: Session, start: date, end: date) -> list[Row[Any]]:
    """(bank id, loan id, the bank's loan reference) of claims paid within [start, end]."""
    stmt = (
        select(Claim.bank_id, Claim.loan_id, Loan.bank_loan_ref)
        .join(Loan, Loan.id == Claim.loan_id)
        .where(Claim.state == ClaimState.paid, Claim.paid_on.between(start, end))
    )
    return list(session.execute(stmt))


# --- status reports ------------------------------------------------------------------------------------


def first_report_month_end(session: Session) -> date | None:
    """The month end of the programme's first status report (when reporting began)."""
    return session.scalar(select(func.min(StatusReport.month_end)))


def reports_between(session: Session, start: date, end: date) -> list[StatusReport]:
    """The status reports for month ends within [start, end], each month's first version (its filing is
    what was on time or late; an amendment corrects it later)."""
    stmt = (
        select(StatusReport)
        .where(StatusReport.month_end.between(start, end), StatusReport.version == 1)
        .order_by(StatusReport.id)
    )
    return list(session.scalars(stmt))


def discrepancy_loans(session: Session, start: date, end: date) -> list[Row[Any]]:
    """(bank id, loan id, the bank's reference) of discrepancies about a known loan in the reports for
    month ends within [start, end] (each month's first version, as filed), one row per discrepancy."""
    stmt = (
        select(Discrepancy.bank_id, Discrepancy.loan_id, Discrepancy.bank_loan_ref)
        .join(StatusReport, StatusReport.id == Discrepancy.report_id)
        .where(
            Discrepancy.month_end.between(start, end),
            Discrepancy.loan_id.is_not(None),
            StatusReport.version == 1,
        )
    )
    return list(session.execute(stmt))


# --- banks ---------------------------------------------------------------------------------------------


def banks(session: Session, ids: Collection[int] | None = None) -> dict[int, Bank]:
    stmt = select(Bank).order_by(Bank.id)
    if ids is not None:
        stmt = stmt.where(Bank.id.in_(sorted(ids)))
    return {b.id: b for b in session.scalars(stmt)}


# --- stress test runs ----------------------------------------------------------------------------------


def list_runs(session: Session, *, after_id: int | None, limit: int | None) -> list[StressTestRun]:
    """Newest first."""
    stmt = select(StressTestRun).order_by(StressTestRun.id.desc())
    if after_id is not None:
        stmt = stmt.where(StressTestRun.id < after_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def get_run(session: Session, run_id: int) -> StressTestRun | None:
    return session.get(StressTestRun, run_id)


# --- ratings -------------------------------------------------------------------------------------------


def ratings_of_month(session: Session, month: date, bank_id: int | None = None) -> list[BankRating]:
    stmt = select(BankRating).where(BankRating.month == month).order_by(BankRating.bank_id)
    if bank_id is not None:
        stmt = stmt.where(BankRating.bank_id == bank_id)
    return list(session.scalars(stmt))


def ratings_between(
    session: Session, start: date, end: date, bank_ids: Collection[int] | None = None
) -> list[BankRating]:
    """Ratings of months within [start, end] (first days), by bank and month."""
    stmt = (
        select(BankRating)
        .where(BankRating.month.between(start, end))
        .order_by(BankRating.bank_id, BankRating.month)
    )
    if bank_ids is not None:
        stmt = stmt.where(BankRating.bank_id.in_(sorted(bank_ids)))
    return list(session.scalars(stmt))


def bank_history(
    session: Session, bank_id: int, *, before: date | None, limit: int | None
) -> list[BankRating]:
    """A bank's ratings, newest month first; `before`: only months before it."""
    stmt = select(BankRating).where(BankRating.bank_id == bank_id).order_by(BankRating.month.desc())
    if before is not None:
        stmt = stmt.where(BankRating.month < before)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def latest_rated_month(session: Session, bank_id: int | None = None) -> date | None:
    stmt = select(func.max(BankRating.month))
    if bank_id is not None:
        stmt = stmt.where(BankRating.bank_id == bank_id)
    return session.scalar(stmt)


def rated_months(session: Session) -> list[date]:
    """Every month with ratings, newest first."""
    stmt = select(BankRating.month).distinct().order_by(BankRating.month.desc())
    return list(session.scalars(stmt))


def delete_ratings_of_month(session: Session, month: date) -> None:
    session.execute(delete(BankRating).where(BankRating.month == month))


def month_has_ratings(session: Session, month: date) -> bool:
    stmt = select(BankRating.id).where(and_(BankRating.month == month)).limit(1)
    return session.scalar(stmt) is not None
