"""Queries behind the oversight reports.

Summary and breakdowns read only the portfolio aggregates (`portfolio_totals`, `portfolio_daily`,
`portfolio_monthly`, `year_counters`) and the fund ledger: their cost grows with banks × days (or months)
of the period, never with the number of loans.
Registers (aging detail, discrepancies) are indexed reads that can stream (`yield_per`).

Every function takes `bank_id`: None for the whole programme, a bank's id to restrict to its loans. The
caller decides which (see `service.bank_scope`); nothing here knows who asks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from functools import cache
from typing import Any, TypeAlias

from sqlalchemy import ColumnElement, Date, Row, Select, bindparam, case, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from loanfund.applications.models import Application
from loanfund.banks.models import Bank
from loanfund.claims.models import Claim, ClaimState, Recovery, RecoveryKind
from loanfund.enterprises.models import Enterprise
from loanfund.loans.models import Loan
from loanfund.loans.state import LoanState
from loanfund.portfolio.models import PortfolioDaily, PortfolioMonthly, PortfolioTotal, YearCounter
from loanfund.status_reports.models import Discrepancy, StatusReport

STREAM_BATCH = 1000
PROGRAMME = 0  # bank_id of the programme-wide year counters
AT_RISK = (LoanState.overdue, LoanState.non_performing)

Aggregate = type[PortfolioDaily] | type[PortfolioMonthly]
AnySelect: TypeAlias = Select[*tuple[Any, ...]]


def _sum(expr: ColumnElement[Any] | InstrumentedAttribute[Any]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(expr), 0)


def _date_col(model: Aggregate) -> InstrumentedAttribute[date]:
    return PortfolioDaily.day if model is PortfolioDaily else PortfolioMonthly.month


def portfolio_figures(
    session: Session,
    model: Aggregate,
    keys: Sequence[InstrumentedAttribute[Any]],
    *,
    start: date,
    end: date,
    bank_id: int | None,
) -> list[Row[Any]]:
    """Flows with dates in [start, end] and stocks at the end of `end`, grouped by `keys` (none: one row).

    Columns: the keys, then loans_started, disbursed, principal_repaid, interest_repaid (in the period),
    cumulative_loans, cumulative_disbursed (up to `end`), covered, overdue, npl, compensated (stocks).
    For `portfolio_monthly` the dates are first days of months, so `end` may be any day of the last month.
    """
    day = _date_col(model)
    in_period = day >= start

    def flow(col: InstrumentedAttribute[int]) -> ColumnElement[Any]:
        return _sum(case((in_period, col), else_=0))

    stmt = (
        select(
            *keys,
            flow(model.loans_started).label("loans_started"),
            flow(model.disbursed_fen).label("disbursed"),
            flow(model.principal_repaid_fen).label("principal_repaid"),
            flow(model.interest_repaid_fen).label("interest_repaid"),
            _sum(model.loans_started).label("cumulative_loans"),
            _sum(model.disbursed_fen).label("cumulative_disbursed"),
            _sum(model.d_covered_fen).label("covered"),
            _sum(model.d_overdue_fen).label("overdue"),
            _sum(model.d_npl_fen).label("npl"),
            _sum(model.d_compensated_fen).label("compensated"),
        )
        .where(day <= end)
        .group_by(*keys)
        .order_by(*keys)
    )
    if bank_id is not None:
        stmt = stmt.where(model.bank_id == bank_id)
    return list(session.execute(stmt))


def bank_figures(session: Session, *, start: date, end: date, bank_id: int | None) -> list[Row[Any]]:
    """`portfolio_figures` of `portfolio_daily` by bank, read from the running totals: the flows from the
    days of [start, end], the cumulative figures and the stocks as the totals less the days after `end`.
    Only the rows from `start` on are read, so the cost follows the period, not the programme's age."""
    params: dict[str, Any] = {"start": start, "end": end}
    if bank_id is not None:
        params["bank_id"] = bank_id
    return list(session.execute(_bank_figures_query(bank_id is not None), params))


@cache
def _bank_figures_query(one_bank: bool) -> AnySelect:
    """Built once (it runs for every summary): `start`, `end` and `bank_id` are parameters."""
    d, t = PortfolioDaily, PortfolioTotal
    start, end = bindparam("start", type_=Date()), bindparam("end", type_=Date())
    period = (
        select(
            d.bank_id,
            _sum(d.loans_started).label("loans_started"),
            _sum(d.disbursed_fen).label("disbursed"),
            _sum(d.principal_repaid_fen).label("principal_repaid"),
            _sum(d.interest_repaid_fen).label("interest_repaid"),
        )
        .where(d.day >= start, d.day <= end)
        .group_by(d.bank_id)
        .subquery("period")
    )
    after = (
        select(
            d.bank_id,
            _sum(d.loans_started).label("loans_started"),
            _sum(d.disbursed_fen).label("disbursed"),
            _sum(d.d_covered_fen).label("covered"),
            _sum(d.d_overdue_fen).label("overdue"),
            _sum(d.d_npl_fen).label("npl"),
            _sum(d.d_compensated_fen).label("compensated"),
        )
        .where(d.day > end)
        .group_by(d.bank_id)
        .subquery("after")
    )

    def flow(name: str) -> ColumnElement[Any]:
        return func.coalesce(period.c[name], 0).label(name)

    def at_end(total: InstrumentedAttribute[int], name: str, label: str) -> ColumnElement[Any]:
        return (total - func.coalesce(after.c[name], 0)).label(label)

    stmt = (
        select(
            t.bank_id,
            flow("loans_started"),
            flow("disbursed"),
            flow("principal_repaid"),
            flow("interest_repaid"),
            at_end(t.loans_started, "loans_started", "cumulative_loans"),
            at_end(t.disbursed_fen, "disbursed", "cumulative_disbursed"),
            at_end(t.d_covered_fen, "covered", "covered"),
            at_end(t.d_overdue_fen, "overdue", "overdue"),
            at_end(t.d_npl_fen, "npl", "npl"),
            at_end(t.d_compensated_fen, "compensated", "compensated"),
        )
        .outerjoin(period, period.c.bank_id == t.bank_id)
        .outerjoin(after, after.c.bank_id == t.bank_id)
        .order_by(t.bank_id)
    )
    if one_bank:
        stmt = stmt.where(t.bank_id == bindparam("bank_id"))
    return stmt


def monthly_series(session: Session, *, end: date, bank_id: int | None) -> list[Row[Any]]:
    """Per month up to `end`: the month's flows and its stock deltas (callers accumulate the stocks)."""
    m = PortfolioMonthly
    stmt = (
        select(
            m.month,
            _sum(m.loans_started).label("loans_started"),
            _sum(m.disbursed_fen).label("disbursed"),
            _sum(m.principal_repaid_fen).label("principal_repaid"),
            _sum(m.interest_repaid_fen).label("interest_repaid"),
            _sum(m.d_covered_fen).label("covered"),
            _sum(m.d_overdue_fen).label("overdue"),
            _sum(m.d_npl_fen).label("npl"),
            _sum(m.d_compensated_fen).label("compensated"),
        )
        .where(m.month <= end)
        .group_by(m.month)
        .order_by(m.month)
    )
    if bank_id is not None:
        stmt = stmt.where(m.bank_id == bank_id)
    return list(session.execute(stmt))


def year_counts(session: Session, *, year: int, bank_id: int | None) -> tuple[int, int, int]:
    """(enterprises served in the year, first-time borrowers in the year, first-time borrowers up to it).

    The last is the number of distinct enterprises that have ever borrowed by the end of the year.
    """
    key = PROGRAMME if bank_id is None else bank_id
    row = session.execute(
        select(
            _sum(case((YearCounter.year == year, YearCounter.served), else_=0)),
            _sum(case((YearCounter.year == year, YearCounter.first_time), else_=0)),
            _sum(YearCounter.first_time),
        ).where(YearCounter.bank_id == key, YearCounter.year <= year)
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


def lending_years(session: Session) -> tuple[int, int] | None:
    """The first and last year in which the programme lent (its year counters), or None before any loan."""
    row = session.execute(
        select(func.min(YearCounter.year), func.max(YearCounter.year)).where(YearCounter.bank_id == PROGRAMME)
    ).one()
    return None if row[0] is None else (int(row[0]), int(row[1]))


def banks_by_id(session: Session, ids: Sequence[int]) -> dict[int, Bank]:
    if not ids:
        return {}
    return {b.id: b for b in session.scalars(select(Bank).where(Bank.id.in_(list(ids))))}


def get_bank(session: Session, bank_id: int) -> Bank | None:
    return session.get(Bank, bank_id)


def fund_shares(session: Session) -> dict[int, Any]:
    return {row[0]: row[1] for row in session.execute(select(Bank.id, Bank.fund_share))}


# --- aging ------------------------------------------------------------------------------------------


def bucket_expr(bounds: Sequence[int]) -> ColumnElement[int]:
    """The bucket index (0-based) of a loan's days past due; len(bounds) for the open last bucket."""
    return case(
        *((Loan.days_past_due <= bound, i) for i, bound in enumerate(bounds)),
        else_=len(bounds),
    )


def _at_risk(bank_id: int | None) -> list[ColumnElement[bool]]:
    conds = [Loan.state.in_(AT_RISK), Loan.days_past_due > 0]
    if bank_id is not None:
        conds.append(Loan.bank_id == bank_id)
    return conds


def aging_buckets(
    session: Session, bounds: Sequence[int], *, bank_id: int | None
) -> dict[int, tuple[int, int]]:
    """{bucket index: (loans, outstanding fen)} of overdue and non-performing loans, now.

    Uses `ix_loans_overdue`, which holds the loans with days past due only.
    """
    bucket = bucket_expr(bounds).label("bucket")
    stmt = select(bucket, func.count(), _sum(Loan.outstanding_fen)).where(*_at_risk(bank_id)).group_by(bucket)
    return {int(r[0]): (int(r[1]), int(r[2])) for r in session.execute(stmt)}


def aging_detail_stmt(bounds: Sequence[int], *, bank_id: int | None) -> AnySelect:
    """Overdue and non-performing loans, most days past due first."""
    return (
        select(
            Loan.id.label("loan_id"),
            Bank.code.label("bank_code"),
            Loan.bank_loan_ref,
            Enterprise.credit_code,
            Enterprise.name.label("enterprise_name"),
            Loan.state,
            Loan.days_past_due,
            bucket_expr(bounds).label("bucket"),
            Loan.outstanding_fen,
            Loan.npl_since,
            Loan.last_event_date,
        )
        .join(Bank, Bank.id == Loan.bank_id)
        .join(Enterprise, Enterprise.id == Loan.enterprise_id)
        .where(*_at_risk(bank_id))
        .order_by(Loan.days_past_due.desc(), Loan.id)
    )


# --- discrepancies -------------------------------------------------------------------------------


def discrepancies_stmt(*, bank_id: int | None, month_end: date | None, kind: str | None) -> AnySelect:
    """Discrepancies in (month end, bank, id) order; `ix_status_report_discrepancies_bank_month`."""
    stmt = (
        select(
            Discrepancy.id,
            Discrepancy.report_id,
            StatusReport.version.label("report_version"),
            Discrepancy.month_end,
            Discrepancy.bank_id,
            Bank.code.label("bank_code"),
            Discrepancy.loan_id,
            Discrepancy.bank_loan_ref,
            Discrepancy.kind,
            Discrepancy.reported_outstanding_fen,
            Discrepancy.derived_outstanding_fen,
            Discrepancy.reported_days_past_due,
        )
        .join(Bank, Bank.id == Discrepancy.bank_id)
        .join(StatusReport, StatusReport.id == Discrepancy.report_id)
        .order_by(Discrepancy.month_end, Discrepancy.bank_id, Discrepancy.id)
    )
    if bank_id is not None:
        stmt = stmt.where(Discrepancy.bank_id == bank_id)
    if month_end is not None:
        stmt = stmt.where(Discrepancy.month_end == month_end)
    if kind is not None:
        stmt = stmt.where(Discrepancy.kind == kind)
    return stmt


# --- claims ----------------------------------------------------------------------------------------


def claims_stmt(
    *, bank_id: int | None, state: ClaimState | None = None, enterprise_id: int | None = None
) -> AnySelect:
    """Claims with their loan, enterprise and recovery totals, in (filed on, id) order."""

    def total(kind: RecoveryKind, col: InstrumentedAttribute[int]) -> ColumnElement[Any]:
        return _sum(case((Recovery.kind == kind, col), else_=0))

    rec = (
        select(
            Recovery.claim_id,
            total(RecoveryKind.recovery, Recovery.gross_fen).label("gross"),
            total(RecoveryKind.recovery, Recovery.costs_fen).label("costs"),
            total(RecoveryKind.recovery, Recovery.fund_share_fen).label("fund_share"),
            total(RecoveryKind.remittance, Recovery.fund_share_fen).label("remitted"),
        )
        .group_by(Recovery.claim_id)
        .subquery()
    )
    stmt = (
        select(
            Claim.id.label("claim_id"),
            Claim.state,
            Claim.filed_on,
            Claim.reviewed_on,
            Claim.paid_on,
            Claim.collection_closed_on,
            Claim.principal_fen,
            Claim.fund_share,
            Claim.claimed_fen,
            Claim.approved_fen,
            Claim.reserved_fen,
            Claim.paid_fen,
            Claim.reduction_reason,
            Claim.rejection_reason,
            Claim.early_default,
            Bank.code.label("bank_code"),
            Loan.id.label("loan_id"),
            Loan.bank_loan_ref,
            Loan.npl_since,
            Enterprise.credit_code,
            Enterprise.name.label("enterprise_name"),
            func.coalesce(rec.c.gross, 0).label("recovered_gross_fen"),
            func.coalesce(rec.c.costs, 0).label("recovery_costs_fen"),
            func.coalesce(rec.c.fund_share, 0).label("recovered_share_fen"),
            func.coalesce(rec.c.remitted, 0).label("remitted_fen"),
        )
        .join(Bank, Bank.id == Claim.bank_id)
        .join(Loan, Loan.id == Claim.loan_id)
        .join(Enterprise, Enterprise.id == Loan.enterprise_id)
        .outerjoin(rec, rec.c.claim_id == Claim.id)
        .order_by(Claim.filed_on, Claim.id)
    )
    if bank_id is not None:
        stmt = stmt.where(Claim.bank_id == bank_id)
    if state is not None:
        stmt = stmt.where(Claim.state == state)
    if enterprise_id is not None:
        stmt = stmt.where(Loan.enterprise_id == enterprise_id)
    return stmt


def claims_by_state(
    session: Session, *, bank_id: int | None, state: ClaimState | None
) -> list[tuple[Any, ...]]:
    """Claims counted and summed per state (claimed, approved, paid): one grouped read of the claims."""
    stmt = select(
        Claim.state,
        func.count().label("count"),
        _sum(Claim.claimed_fen).label("claimed"),
        _sum(func.coalesce(Claim.approved_fen, 0)).label("approved"),
        _sum(func.coalesce(Claim.paid_fen, 0)).label("paid"),
    ).group_by(Claim.state)
    if bank_id is not None:
        stmt = stmt.where(Claim.bank_id == bank_id)
    if state is not None:
        stmt = stmt.where(Claim.state == state)
    return [tuple(r) for r in session.execute(stmt)]


# --- one enterprise --------------------------------------------------------------------------------


def enterprise_by_code(session: Session, credit_code: str) -> Enterprise | None:
    return session.scalar(select(Enterprise).where(Enterprise.credit_code == credit_code))


def applications_of(
    session: Session, credit_code: str, *, bank_id: int | None
) -> list[tuple[Application, str]]:
    stmt = (
        select(Application, Bank.code)
        .join(Bank, Bank.id == Application.bank_id)
        .where(Application.credit_code == credit_code)
        .order_by(Application.application_date, Application.id)
    )
    if bank_id is not None:
        stmt = stmt.where(Application.bank_id == bank_id)
    return [(r[0], r[1]) for r in session.execute(stmt)]


def loans_of(session: Session, enterprise_id: int, *, bank_id: int | None) -> list[tuple[Loan, str]]:
    stmt = (
        select(Loan, Bank.code)
        .join(Bank, Bank.id == Loan.bank_id)
        .where(Loan.enterprise_id == enterprise_id)
        .order_by(Loan.start_date, Loan.id)
    )
    if bank_id is not None:
        stmt = stmt.where(Loan.bank_id == bank_id)
    return [(r[0], r[1]) for r in session.execute(stmt)]


# --- streaming -------------------------------------------------------------------------------------


def stream(session: Session, stmt: AnySelect) -> Iterator[Any]:
    """The rows of `stmt` as mappings, fetched in batches (a server-side cursor on PostgreSQL)."""
    result = session.execute(stmt, execution_options={"yield_per": STREAM_BATCH})
    try:
        yield from result.mappings()
    finally:
        result.close()


def first_rows(session: Session, stmt: AnySelect, limit: int) -> list[Any]:
    """At most `limit` rows of `stmt`, as mappings."""
    return list(session.execute(stmt.limit(limit)).mappings())
