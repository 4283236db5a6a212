"""Keep the portfolio aggregates in step with every loan change, and read them.

`loan_change()` takes a loan's category contribution before and after a change and the flows it caused,
and adds the difference to the day and month rows. In-order events change one day; a backdated event
replays the loan, so the loan's whole history is taken out and put back (`replace_history`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from loanfund.loans.state import Contract, Event, EventKind, LoanState, Snapshot, apply
from loanfund.portfolio.models import (
    BorrowerYear,
    FirstBorrowing,
    PortfolioDaily,
    PortfolioMonthly,
    YearCounter,
)

FIGURES = (
    "disbursed_fen",
    "principal_repaid_fen",
    "interest_repaid_fen",
    "loans_started",
    "d_covered_fen",
    "d_overdue_fen",
    "d_npl_fen",
    "d_compensated_fen",
)
COVERED = {LoanState.active, LoanState.overdue, LoanState.non_performing}


def contribution(state: LoanState, outstanding_fen: int) -> dict[str, int]:
    """A loan's part in each stock category."""
    return {
        "d_covered_fen": outstanding_fen if state in COVERED else 0,
        "d_overdue_fen": outstanding_fen if state is LoanState.overdue else 0,
        "d_npl_fen": outstanding_fen if state is LoanState.non_performing else 0,
        "d_compensated_fen": outstanding_fen if state is LoanState.compensated else 0,
    }


@dataclass
class Delta:
    day: date
    figures: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, value: int) -> None:
        if value:
            self.figures[key] = self.figures.get(key, 0) + value

    def negated(self) -> Delta:
        return Delta(self.day, {k: -v for k, v in self.figures.items()})


def snapshot_delta(day: date, before: Snapshot, after: Snapshot, event: Event | None) -> Delta:
    d = Delta(day)
    b = contribution(before.state, before.outstanding_fen)
    a = contribution(after.state, after.outstanding_fen)
    for k in a:
        d.add(k, a[k] - b[k])
    if event is not None:
        if event.kind is EventKind.disbursement:
            d.add("disbursed_fen", event.principal_fen)
        elif event.kind is EventKind.repayment:
            d.add("principal_repaid_fen", event.principal_fen)
            d.add("interest_repaid_fen", event.interest_fen)
    if before.first_disbursed_on is None and after.first_disbursed_on is not None:
        d.add("loans_started", 1)
    return d


def history_deltas(contract: Contract, events: Sequence[Event], npl_days: int) -> list[Delta]:
    """The deltas a loan's events produce when applied in (date, posting order)."""
    out, snap = [], Snapshot()
    for _, e in sorted(enumerate(events), key=lambda p: (p[1].event_date, p[0])):
        new = apply(snap, contract, e, npl_days)
        out.append(snapshot_delta(e.event_date, snap, new, e))
        snap = new
    return out


@dataclass(frozen=True)
class LoanKey:
    bank_id: int
    industry: str
    grade: str


def key_of(loan: Any) -> LoanKey:
    return LoanKey(loan.bank_id, loan.industry, loan.grade)


def _upsert(session: Session, table: Table, keys: dict[str, Any], figures: dict[str, int]) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = {**keys, **{f: figures.get(f, 0) for f in FIGURES}}
    stmt = insert(table).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={f: table.c[f] + stmt.excluded[f] for f in FIGURES if figures.get(f)},
    )
    session.execute(stmt)


def apply_deltas(session: Session, key: LoanKey, deltas: Iterable[Delta]) -> None:
    by_day: dict[date, dict[str, int]] = {}
    for d in deltas:
        acc = by_day.setdefault(d.day, {})
        for k, v in d.figures.items():
            acc[k] = acc.get(k, 0) + v
    by_month: dict[date, dict[str, int]] = {}
    for day, figs in by_day.items():
        acc = by_month.setdefault(day.replace(day=1), {})
        for k, v in figs.items():
            acc[k] = acc.get(k, 0) + v
    daily: Table = PortfolioDaily.__table__  # type: ignore[assignment]
    monthly: Table = PortfolioMonthly.__table__  # type: ignore[assignment]
    for day, figs in sorted(by_day.items()):
        if any(figs.values()):
            _upsert(session, daily, {"bank_id": key.bank_id, "day": day}, figs)
    for month, figs in sorted(by_month.items()):
        if any(figs.values()):
            _upsert(
                session,
                monthly,
                {"bank_id": key.bank_id, "industry": key.industry, "grade": key.grade, "month": month},
                figs,
            )


def note_borrowing(session: Session, enterprise_id: int, bank_id: int, day: date) -> None:
    """An enterprise received a disbursement: count it as served that year and, if it is the first time,
    as a first-time borrower (programme-wide and for the bank)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    year = day.year
    for b in (bank_id, 0):
        # RETURNING tells whether the row is new: psycopg reports no rowcount (-1) for this insert
        inserted = session.execute(
            insert(BorrowerYear)
            .values(enterprise_id=enterprise_id, bank_id=b, year=year)
            .on_conflict_do_nothing()
            .returning(BorrowerYear.year)
        ).first()
        if inserted is not None:
            _count(session, b, year, served=1)
        first = session.scalar(
            select(FirstBorrowing)
            .where(FirstBorrowing.enterprise_id == enterprise_id, FirstBorrowing.bank_id == b)
            .with_for_update()
        )
        if first is None:
            session.add(FirstBorrowing(enterprise_id=enterprise_id, bank_id=b, first_year=year))
            session.flush()
            _count(session, b, year, first_time=1)
        elif year < first.first_year:
            _count(session, b, first.first_year, first_time=-1)
            first.first_year = year
            _count(session, b, year, first_time=1)


def _count(session: Session, bank_id: int, year: int, served: int = 0, first_time: int = 0) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(YearCounter).values(bank_id=bank_id, year=year, served=served, first_time=first_time)
    stmt = stmt.on_conflict_do_update(
        index_elements=["bank_id", "year"],
        set_={
            "served": YearCounter.served + stmt.excluded.served,
            "first_time": YearCounter.first_time + stmt.excluded.first_time,
        },
    )
    session.execute(stmt)


# --- reading ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stocks:
    covered_fen: int = 0
    overdue_fen: int = 0
    npl_fen: int = 0
    compensated_fen: int = 0


def stocks_by_bank(
    session: Session, as_of: date | None = None, bank_id: int | None = None
) -> dict[int, Stocks]:
    """Outstanding principal by category and bank at the end of `as_of` (default: now)."""
    stmt = select(
        PortfolioDaily.bank_id,
        func.coalesce(func.sum(PortfolioDaily.d_covered_fen), 0),
        func.coalesce(func.sum(PortfolioDaily.d_overdue_fen), 0),
        func.coalesce(func.sum(PortfolioDaily.d_npl_fen), 0),
        func.coalesce(func.sum(PortfolioDaily.d_compensated_fen), 0),
    ).group_by(PortfolioDaily.bank_id)
    if as_of is not None:
        stmt = stmt.where(PortfolioDaily.day <= as_of)
    if bank_id is not None:
        stmt = stmt.where(PortfolioDaily.bank_id == bank_id)
    return {
        row[0]: Stocks(int(row[1]), int(row[2]), int(row[3]), int(row[4])) for row in session.execute(stmt)
    }


def covered_total(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(PortfolioDaily.d_covered_fen), 0))) or 0)


def clear_all(session: Session) -> None:
    """Empty every aggregate (before a rebuild)."""
    for model in (PortfolioDaily, PortfolioMonthly, BorrowerYear, FirstBorrowing, YearCounter):
        session.execute(model.__table__.delete())  # type: ignore[attr-defined]


# --- rebuilding from the loans (for checks and after bulk loads) -----------------------------------


def loan_deltas(loan: Any, events: Sequence[Event], npl_days: int) -> list[Delta]:
    """Every delta a loan has contributed: its events, then the fund's transitions."""
    from dataclasses import replace

    deltas = history_deltas(loan.contract, events, npl_days)
    snap = Snapshot()
    for _, e in sorted(enumerate(events), key=lambda p: (p[1].event_date, p[0])):
        snap = apply(snap, loan.contract, e, npl_days)
    if loan.compensated_on is not None:
        comp = replace(snap, state=LoanState.compensated)
        deltas.append(snapshot_delta(loan.compensated_on, snap, comp, None))
        snap = comp
    if loan.written_off_on is not None:
        deltas.append(
            snapshot_delta(loan.written_off_on, snap, replace(snap, state=LoanState.written_off), None)
        )
    return deltas


def rebuild(session: Session, npl_days: int) -> None:
    """Recompute every aggregate from the loans and their events (small and medium books)."""
    from loanfund.loans.models import Loan, LoanEvent

    clear_all(session)
    events_by_loan: dict[int, list[LoanEvent]] = {}
    for ev in session.scalars(select(LoanEvent).order_by(LoanEvent.id)):
        events_by_loan.setdefault(ev.loan_id, []).append(ev)
    for loan in session.scalars(select(Loan).order_by(Loan.id)):
        evs = events_by_loan.get(loan.id, [])
        as_events = [
            Event(e.kind, e.event_date, e.principal_fen, e.interest_fen, e.days_past_due or 0) for e in evs
        ]
        apply_deltas(session, key_of(loan), loan_deltas(loan, as_events, npl_days))
        for e in evs:
            if e.kind is EventKind.disbursement:
                note_borrowing(session, loan.enterprise_id, loan.bank_id, e.event_date)
    session.flush()


def snapshot_tables(session: Session) -> dict[str, set[tuple[Any, ...]]]:
    """The aggregate tables' rows (zero rows dropped), to compare a maintained state with a rebuild."""
    out: dict[str, set[tuple[Any, ...]]] = {}
    for model, keys in (
        (PortfolioDaily, ("bank_id", "day")),
        (PortfolioMonthly, ("bank_id", "industry", "grade", "month")),
    ):
        rows = set()
        for r in session.scalars(select(model)):
            figs = tuple(getattr(r, f) for f in FIGURES)
            if any(figs):
                rows.add(tuple(getattr(r, k) for k in keys) + figs)
        out[model.__tablename__] = rows
    out["borrower_years"] = {
        (r.enterprise_id, r.bank_id, r.year) for r in session.scalars(select(BorrowerYear))
    }
    out["first_borrowings"] = {
        (r.enterprise_id, r.bank_id, r.first_year) for r in session.scalars(select(FirstBorrowing))
    }
    out["year_counters"] = {
        (r.bank_id, r.year, r.served, r.first_time)
        for r in session.scalars(select(YearCounter))
        if r.served or r.first_time
    }
    return out
