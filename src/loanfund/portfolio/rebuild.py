"""Rebuild every portfolio aggregate from the loans and their events in SQL, for bulk loads.

`service.rebuild` replays each loan in Python: right for checks on small and medium books, far too slow
for a million loans. This does the same in a handful of `INSERT … SELECT … GROUP BY` statements, with
window functions standing in for the replay. Both give the same rows (`tests/portfolio/test_rebuild.py`),
on PostgreSQL and SQLite.

How the replay becomes SQL. Events are taken per loan in replay order (event date, then posting order =
id). After each event:

* outstanding principal = disbursements so far − principal repaid so far;
* the state is set by the latest disbursement (→ active) or delinquency report (→ active, overdue or
  non-performing by days past due: `rules.standing`, restated as a CASE by `standing_sql`, which
  `tests/portfolio/test_rebuild.py` holds to the rule over generated cases); repayments keep it, except
  a repayment of principal that brings the outstanding to zero, which settles the loan (and nothing
  follows a settlement);
* the loan's part in each stock is its outstanding if the state belongs to the category, and the day's
  delta is that part minus the part after the previous event;
* the first event of a loan is its first disbursement (nothing else is accepted before one), so it
  counts the loan as started.

The fund's transitions come from the loan row: on `compensated_on` the outstanding moves from the
non-performing stock (the only state a loan is compensated from) to the compensated one, and on
`written_off_on` it leaves that too.

Only events that the rules accepted are in the table, so the replay never meets a refused one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    Select,
    Table,
    and_,
    case,
    cast,
    extract,
    func,
    insert,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from loanfund.loans.models import Loan, LoanEvent
from loanfund.loans.state import EventKind
from loanfund.portfolio.models import (
    BorrowerYear,
    FirstBorrowing,
    PortfolioDaily,
    PortfolioMonthly,
    PortfolioTotal,
    YearCounter,
)
from loanfund.portfolio.service import FIGURES, clear_all
from loanfund.rules import LoanRules, Standing

_ACTIVE, _OVERDUE, _NPL, _SETTLED = 1, 2, 3, 4
_ZERO: ColumnElement[int] = literal_column("0")
_ONE: ColumnElement[int] = literal_column("1")


def _table(model: type) -> Table:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


def _month_start(session: Session, day: ColumnElement[object]) -> ColumnElement[object]:
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.date_trunc("month", day), Date)
    return func.date(day, "start of month")


def _year(day: ColumnElement[object]) -> ColumnElement[int]:
    return cast(extract("year", day), Integer)


def _event_deltas(lr: LoanRules) -> Select[tuple[object, ...]]:
    """One row per event: its loan, day and every figure it changed."""
    e = _table(LoanEvent)
    is_disb = e.c.kind == EventKind.disbursement
    is_repay = e.c.kind == EventKind.repayment
    order = (e.c.event_date, e.c.id)
    setter = case((is_disb, _ACTIVE), else_=standing_sql(e.c.days_past_due, lr))
    running = (
        select(
            e.c.id,
            e.c.loan_id,
            e.c.event_date,
            e.c.kind,
            e.c.principal_fen,
            e.c.interest_fen,
            (
                func.sum(case((is_disb, e.c.principal_fen), else_=0)).over(
                    partition_by=e.c.loan_id, order_by=order
                )
                - func.sum(case((is_repay, e.c.principal_fen), else_=0)).over(
                    partition_by=e.c.loan_id, order_by=order
                )
            ).label("outstanding"),
            # events since (and including) the last state-setting one share a group number
            func.count(case((~is_repay, 1))).over(partition_by=e.c.loan_id, order_by=order).label("grp"),
            case((~is_repay, setter)).label("setter"),
            func.row_number().over(partition_by=e.c.loan_id, order_by=order).label("rn"),
        )
    ).subquery("running")
    r = running.c
    carried = func.max(r.setter).over(partition_by=(r.loan_id, r.grp))
    state = case(
        (and_(r.kind == EventKind.repayment, r.principal_fen > 0, r.outstanding == 0), _SETTLED),
        else_=carried,
    )
    stated = select(
        r.id,
        r.loan_id,
        r.event_date,
        r.kind,
        r.principal_fen,
        r.interest_fen,
        r.rn,
        case((state.in_([_ACTIVE, _OVERDUE, _NPL]), r.outstanding), else_=0).label("covered"),
        case((state == _OVERDUE, r.outstanding), else_=0).label("overdue"),
        case((state == _NPL, r.outstanding), else_=0).label("npl"),
    ).subquery("stated")
    s = stated.c

    def delta(col: ColumnElement[int]) -> ColumnElement[int]:
        previous = func.lag(col).over(partition_by=s.loan_id, order_by=(s.event_date, s.id))
        return col - func.coalesce(previous, 0)

    return select(
        s.loan_id,
        s.event_date.label("day"),
        case((s.kind == EventKind.disbursement, s.principal_fen), else_=0).label("disbursed_fen"),
        case((s.kind == EventKind.repayment, s.principal_fen), else_=0).label("principal_repaid_fen"),
        case((s.kind == EventKind.repayment, s.interest_fen), else_=0).label("interest_repaid_fen"),
        case((s.rn == 1, _ONE), else_=_ZERO).label("loans_started"),
        delta(s.covered).label("d_covered_fen"),
        delta(s.overdue).label("d_overdue_fen"),
        delta(s.npl).label("d_npl_fen"),
        _ZERO.label("d_compensated_fen"),
    )


def standing_sql(days_past_due: ColumnElement[Any], lr: LoanRules) -> ColumnElement[int]:
    """`rules.standing` in SQL: _ACTIVE, _OVERDUE or _NPL for a delinquency report's days past due."""
    return case(
        (days_past_due <= 0, _ACTIVE),
        (days_past_due < lr.npl_days, _OVERDUE),
        else_=_NPL,
    )


STANDING_CODES = {
    Standing.performing: _ACTIVE,
    Standing.overdue: _OVERDUE,
    Standing.non_performing: _NPL,
}


def _fund_deltas() -> tuple[Select[tuple[object, ...]], Select[tuple[object, ...]]]:
    """One row per compensation and per write-off, from the loans' fund dates."""
    e, loan = _table(LoanEvent), _table(Loan)
    final = (
        select(
            e.c.loan_id,
            func.sum(
                case(
                    (e.c.kind == EventKind.disbursement, e.c.principal_fen),
                    (e.c.kind == EventKind.repayment, -e.c.principal_fen),
                    else_=0,
                )
            ).label("outstanding"),
        )
        .group_by(e.c.loan_id)
        .subquery("final")
    )
    zero = _ZERO
    out = final.c.outstanding
    compensated = (
        select(
            loan.c.id.label("loan_id"),
            loan.c.compensated_on.label("day"),
            *(zero.label(f) for f in FIGURES[:4]),
            (-out).label("d_covered_fen"),
            zero.label("d_overdue_fen"),
            (-out).label("d_npl_fen"),
            out.label("d_compensated_fen"),
        )
        .join_from(loan, final, final.c.loan_id == loan.c.id)
        .where(loan.c.compensated_on.is_not(None))
    )
    written_off = (
        select(
            loan.c.id.label("loan_id"),
            loan.c.written_off_on.label("day"),
            *(zero.label(f) for f in FIGURES[:7]),
            (-out).label("d_compensated_fen"),
        )
        .join_from(loan, final, final.c.loan_id == loan.c.id)
        .where(loan.c.written_off_on.is_not(None))
    )
    return compensated, written_off


def totals_query() -> Select[Any]:
    """`portfolio_totals` computed from `portfolio_daily` (the rows with any figure not zero)."""
    daily = _table(PortfolioDaily)
    sums = [func.sum(daily.c[f]).label(f) for f in FIGURES]
    return (
        select(daily.c.bank_id, *sums)
        .group_by(daily.c.bank_id)
        .having(or_(*(func.sum(daily.c[f]) != 0 for f in FIGURES)))
    )


def rebuild_in_sql(session: Session, lr: LoanRules) -> None:
    """Empty every aggregate and recompute it from the loans and events; only flushes."""
    session.flush()
    clear_all(session)
    loan = _table(Loan)
    deltas = union_all(_event_deltas(lr), *_fund_deltas()).subquery("deltas")
    d = deltas.c
    sums = [func.sum(d[f]).label(f) for f in FIGURES]
    nonzero = or_(*(func.sum(d[f]) != 0 for f in FIGURES))

    daily = (
        select(loan.c.bank_id, d.day, *sums)
        .join_from(deltas, loan, loan.c.id == d.loan_id)
        .group_by(loan.c.bank_id, d.day)
        .having(nonzero)
    )
    session.execute(insert(_table(PortfolioDaily)).from_select(["bank_id", "day", *FIGURES], daily))
    session.execute(insert(_table(PortfolioTotal)).from_select(["bank_id", *FIGURES], totals_query()))

    month = _month_start(session, d.day).label("month")
    monthly = (
        select(loan.c.bank_id, loan.c.industry, loan.c.grade, month, *sums)
        .join_from(deltas, loan, loan.c.id == d.loan_id)
        .group_by(loan.c.bank_id, loan.c.industry, loan.c.grade, month)
        .having(nonzero)
    )
    session.execute(
        insert(_table(PortfolioMonthly)).from_select(
            ["bank_id", "industry", "grade", "month", *FIGURES], monthly
        )
    )

    e = _table(LoanEvent)
    year = _year(e.c.event_date)
    disbursements = (
        select(loan.c.enterprise_id, loan.c.bank_id, year.label("year"))
        .join_from(e, loan, loan.c.id == e.c.loan_id)
        .where(e.c.kind == EventKind.disbursement)
        .subquery("disbursements")
    )
    b = disbursements.c
    borrowers = union_all(
        select(b.enterprise_id, b.bank_id, b.year), select(b.enterprise_id, _ZERO, b.year)
    ).subquery("borrowers")
    session.execute(
        insert(_table(BorrowerYear)).from_select(
            ["enterprise_id", "bank_id", "year"],
            select(borrowers.c.enterprise_id, borrowers.c.bank_id, borrowers.c.year).distinct(),
        )
    )
    by = _table(BorrowerYear)
    session.execute(
        insert(_table(FirstBorrowing)).from_select(
            ["enterprise_id", "bank_id", "first_year"],
            select(by.c.enterprise_id, by.c.bank_id, func.min(by.c.year)).group_by(
                by.c.enterprise_id, by.c.bank_id
            ),
        )
    )
    fb = _table(FirstBorrowing)
    counts = union_all(
        select(by.c.bank_id, by.c.year, _ONE.label("served"), _ZERO.label("first_time")),
        select(fb.c.bank_id, fb.c.first_year, _ZERO, _ONE),
    ).subquery("counts")
    c = counts.c
    session.execute(
        insert(_table(YearCounter)).from_select(
            ["bank_id", "year", "served", "first_time"],
            select(c.bank_id, c.year, func.sum(c.served), func.sum(c.first_time)).group_by(c.bank_id, c.year),
        )
    )
