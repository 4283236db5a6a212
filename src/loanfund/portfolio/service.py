"""Keep the portfolio aggregates in step with every loan change, and read them.

`loan_change()` takes a loan's category contribution before and after a change and the flows it caused,
and adds the difference to the day and month rows. In-order events change one day; a backdated event
replays the loan, so the loan's whole history is taken out and put back (`replace_history`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from loanfund.core import bulk
from loanfund.loans.state import Contract, Event, EventKind, LoanState, Snapshot, apply, replay
from loanfund.portfolio.models import (
    BorrowerYear,
    FirstBorrowing,
    PortfolioDaily,
    PortfolioMonthly,
    PortfolioTotal,
    YearCounter,
)
from loanfund.rules import LoanRules

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

    def negated(self) -> Delta:
        return Delta(self.day, {k: -v for k, v in self.figures.items()})


# the stock, besides covered principal, that a loan in each state counts its outstanding principal in
_CATEGORY = {
    LoanState.overdue: "d_overdue_fen",
    LoanState.non_performing: "d_npl_fen",
    LoanState.compensated: "d_compensated_fen",
}


def snapshot_delta(day: date, before: Snapshot, after: Snapshot, event: Event | None) -> Delta:
    """What a loan's change from `before` to `after` (by `event`, if any) adds to the aggregates of
    `day`: the change of its part in each stock (`contribution`), and the event's flows. Figures that
    do not change are left out. (Written out rather than as a difference of two `contribution` dicts:
    a batch makes thousands.)"""
    figures: dict[str, int] = {}
    b, a = before.outstanding_fen, after.outstanding_fen
    covered = (a if after.state in COVERED else 0) - (b if before.state in COVERED else 0)
    if covered:
        figures["d_covered_fen"] = covered
    left, entered = _CATEGORY.get(before.state), _CATEGORY.get(after.state)
    if left is not None and b:
        figures[left] = -b
    if entered is not None and a:
        change = figures.get(entered, 0) + a
        if change:
            figures[entered] = change
        else:
            del figures[entered]
    if event is not None:
        if event.kind is EventKind.disbursement:
            if event.principal_fen:
                figures["disbursed_fen"] = event.principal_fen
        elif event.kind is EventKind.repayment:
            if event.principal_fen:
                figures["principal_repaid_fen"] = event.principal_fen
            if event.interest_fen:
                figures["interest_repaid_fen"] = event.interest_fen
    if before.first_disbursed_on is None and after.first_disbursed_on is not None:
        figures["loans_started"] = 1
    return Delta(day, figures)


def history_deltas(contract: Contract, events: Sequence[Event], lr: LoanRules) -> list[Delta]:
    """The deltas a loan's events produce when applied in (date, posting order)."""
    out, snap = [], Snapshot()
    for _, e in sorted(enumerate(events), key=lambda p: (p[1].event_date, p[0])):
        new = apply(snap, contract, e, lr)
        out.append(snapshot_delta(e.event_date, snap, new, e))
        snap = new
    return out


NPL_RATIO_FIGURES = ("d_covered_fen", "d_npl_fen", "d_compensated_fen")
_NPL_RATIO_SET = frozenset(NPL_RATIO_FIGURES)


def moves_npl_ratio(deltas: Iterable[Delta]) -> bool:
    """Whether the deltas change a stock the NPL ratio is made of (an interest payment, or a days-past-due
    report that changes no state, does not: the bank's circuit breaker need not be looked at again)."""
    for d in deltas:
        if not _NPL_RATIO_SET.isdisjoint(d.figures):  # figures hold no zeros
            return True
    return False


class LoanKey(NamedTuple):
    """The aggregate rows a loan counts in (a tuple: one is made per event of a batch)."""

    bank_id: int
    industry: str
    grade: str


def key_of(loan: Any) -> LoanKey:
    return LoanKey(loan.bank_id, loan.industry, loan.grade)


def _add(acc: dict[str, int], figures: dict[str, int]) -> None:
    for k, v in figures.items():
        acc[k] = acc.get(k, 0) + v


@dataclass
class Changes:
    """The aggregate changes of one transaction, collected and then written once per row.

    Writes go in key order, so that concurrent transactions touching the same rows lock them in the
    same order; a batch of thousands of events costs a few statements, not a few per event."""

    daily: dict[tuple[int, date], dict[str, int]] = field(default_factory=dict)
    monthly: dict[tuple[int, str, str, date], dict[str, int]] = field(default_factory=dict)
    borrowings: set[tuple[int, int, int]] = field(default_factory=set)  # enterprise, bank, year

    def add(self, key: LoanKey, deltas: Iterable[Delta]) -> None:
        bank_id, industry, grade = key
        for d in deltas:
            figures = d.figures
            if not figures:
                continue
            daily = self.daily.setdefault((bank_id, d.day), {})
            monthly = self.monthly.setdefault((bank_id, industry, grade, d.day.replace(day=1)), {})
            for k, v in figures.items():
                daily[k] = daily.get(k, 0) + v
                monthly[k] = monthly.get(k, 0) + v

    def borrowed(self, enterprise_id: int, bank_id: int, day: date) -> None:
        """An enterprise received a disbursement: it counts as served that year and, if it is the first
        time, as a first-time borrower (programme-wide and for the bank)."""
        self.borrowings.add((enterprise_id, bank_id, day.year))

    def write(self, session: Session) -> None:
        """Write the changes, a few statements for the whole transaction (queued on the session's
        `bulk.pipeline` if one is open, after what it holds already)."""
        _upsert_many(
            session,
            _table(PortfolioDaily),
            ("bank_id", "day"),
            [(k, f) for k, f in sorted(self.daily.items()) if any(f.values())],
        )
        _upsert_many(
            session,
            _table(PortfolioMonthly),
            ("bank_id", "industry", "grade", "month"),
            [(k, f) for k, f in sorted(self.monthly.items()) if any(f.values())],
        )
        totals: dict[int, dict[str, int]] = {}
        for (bank_id, _), figures in self.daily.items():
            _add(totals.setdefault(bank_id, {}), figures)
        _upsert_many(
            session,
            _table(PortfolioTotal),
            ("bank_id",),
            [((b,), f) for b, f in sorted(totals.items()) if any(f.values())],
        )
        if self.borrowings:
            _write_borrowings(session, self.borrowings)
        self.daily, self.monthly, self.borrowings = {}, {}, set()


def _upsert_many(
    session: Session,
    table: Table,
    keys: tuple[str, ...],
    rows: list[tuple[tuple[Any, ...], dict[str, int]]],
) -> None:
    """Add each row's figures to the stored row with its key (created at zero if absent)."""
    bulk.upsert_add(
        session,
        table,
        keys,
        FIGURES,
        [
            {**dict(zip(keys, key, strict=True)), **{f: figures.get(f, 0) for f in FIGURES}}
            for key, figures in rows
        ],
    )


def _write_borrowings(session: Session, borrowings: set[tuple[int, int, int]]) -> None:
    """The rows of who borrowed in which year, and who borrowed for the first time, each inserted if
    absent, and the yearly counts of what they changed."""
    # (enterprise, bank or 0) → the earliest year it borrowed in this transaction
    years: set[tuple[int, int, int]] = set()
    first: dict[tuple[int, int], int] = {}
    for enterprise_id, bank_id, year in borrowings:
        for b in (bank_id, 0):
            years.add((enterprise_id, b, year))
            first[(enterprise_id, b)] = min(year, first.get((enterprise_id, b), year))
    pairs = sorted(first)
    new = set(
        bulk.insert_returning(
            session,
            _table(BorrowerYear),
            [{"enterprise_id": e, "bank_id": b, "year": y} for e, b, y in sorted(years)],
            ("enterprise_id", "bank_id", "year"),
        )
    )
    fresh = set(
        bulk.insert_returning(
            session,
            _table(FirstBorrowing),
            [{"enterprise_id": e, "bank_id": b, "first_year": first[(e, b)]} for e, b in pairs],
            ("enterprise_id", "bank_id"),
        )
    )
    counts: dict[tuple[int, int], dict[str, int]] = {}  # (bank, year) → served, first_time

    def count(bank_id: int, year: int, served: int = 0, first_time: int = 0) -> None:
        c = counts.setdefault((bank_id, year), {"served": 0, "first_time": 0})
        c["served"] += served
        c["first_time"] += first_time

    for _, bank_id, year in new:
        count(bank_id, year, served=1)
    for e, b in fresh:
        count(b, first[(e, b)], first_time=1)
    # pairs that borrowed before: does this transaction bring their first year forward? Only if they had
    # not borrowed in that year yet (rarely: a loan reported late); read under a lock, as a concurrent
    # writer may move it too
    keys = ("enterprise_id", "bank_id")
    locked = bulk.select_matching(
        session,
        _table(FirstBorrowing),
        keys,
        [
            {"enterprise_id": e, "bank_id": b}
            for e, b in pairs
            if (e, b) not in fresh and (e, b, first[(e, b)]) in new
        ],
        ("enterprise_id", "bank_id", "first_year"),
        lock=True,
    )
    moved = []
    for e, b, stored_year in locked:
        year = first[(e, b)]
        if year < stored_year:
            count(b, stored_year, first_time=-1)
            count(b, year, first_time=1)
            moved.append({"enterprise_id": e, "bank_id": b, "first_year": year})
    bulk.update_rows(session, _table(FirstBorrowing), moved, key=keys)
    bulk.upsert_add(
        session,
        _table(YearCounter),
        ("bank_id", "year"),
        ("served", "first_time"),
        [
            {"bank_id": b, "year": y, **c}
            for (b, y), c in sorted(counts.items())
            if c["served"] or c["first_time"]
        ],
    )


def _table(model: type) -> Table:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


def apply_deltas(session: Session, key: LoanKey, deltas: Iterable[Delta]) -> None:
    changes = Changes()
    changes.add(key, deltas)
    changes.write(session)


def note_borrowing(session: Session, enterprise_id: int, bank_id: int, day: date) -> None:
    changes = Changes()
    changes.borrowed(enterprise_id, bank_id, day)
    changes.write(session)


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
    """Outstanding principal by category and bank at the end of `as_of` (default: now): the running
    totals, less the deltas dated after `as_of`."""
    stocks = (
        PortfolioTotal.d_covered_fen,
        PortfolioTotal.d_overdue_fen,
        PortfolioTotal.d_npl_fen,
        PortfolioTotal.d_compensated_fen,
    )
    stmt = select(PortfolioTotal.bank_id, *stocks)
    if bank_id is not None:
        stmt = stmt.where(PortfolioTotal.bank_id == bank_id)
    figures = {row[0]: [int(v) for v in row[1:]] for row in session.execute(stmt)}
    if as_of is not None:
        later = select(
            PortfolioDaily.bank_id, *(func.sum(getattr(PortfolioDaily, c.key)) for c in stocks)
        ).where(PortfolioDaily.day > as_of)
        if bank_id is not None:
            later = later.where(PortfolioDaily.bank_id == bank_id)
        for row in session.execute(later.group_by(PortfolioDaily.bank_id)):
            now = figures.setdefault(row[0], [0, 0, 0, 0])
            figures[row[0]] = [a - int(b or 0) for a, b in zip(now, row[1:], strict=True)]
    return {b: Stocks(*f) for b, f in figures.items()}


def covered_total(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(PortfolioTotal.d_covered_fen), 0))) or 0)


def clear_all(session: Session) -> None:
    """Empty every aggregate (before a rebuild)."""
    for model in (
        PortfolioDaily,
        PortfolioMonthly,
        PortfolioTotal,
        BorrowerYear,
        FirstBorrowing,
        YearCounter,
    ):
        session.execute(model.__table__.delete())  # type: ignore[attr-defined]


# --- rebuilding from the loans (for checks and after bulk loads) -----------------------------------


def loan_deltas(loan: Any, events: Sequence[Event], lr: LoanRules) -> list[Delta]:
    """Every delta a loan has contributed: its events, then the fund's transitions."""
    from dataclasses import replace

    deltas = history_deltas(loan.contract, events, lr)
    snap = replay(loan.contract, list(events), lr)
    if loan.compensated_on is not None:
        comp = replace(snap, state=LoanState.compensated)
        deltas.append(snapshot_delta(loan.compensated_on, snap, comp, None))
        snap = comp
    if loan.written_off_on is not None:
        deltas.append(
            snapshot_delta(loan.written_off_on, snap, replace(snap, state=LoanState.written_off), None)
        )
    return deltas


def rebuild(session: Session, lr: LoanRules) -> None:
    """Recompute every aggregate from the loans and their events (small and medium books)."""
    from loanfund.loans.models import Loan, LoanEvent

    clear_all(session)
    changes = Changes()
    events_by_loan: dict[int, list[LoanEvent]] = {}
    for ev in session.scalars(select(LoanEvent).order_by(LoanEvent.id)):
        events_by_loan.setdefault(ev.loan_id, []).append(ev)
    for loan in session.scalars(select(Loan).order_by(Loan.id)):
        evs = events_by_loan.get(loan.id, [])
        as_events = [
            Event(e.kind, e.event_date, e.principal_fen, e.interest_fen, e.days_past_due or 0) for e in evs
        ]
        changes.add(key_of(loan), loan_deltas(loan, as_events, lr))
        for e in evs:
            if e.kind is EventKind.disbursement:
                changes.borrowed(loan.enterprise_id, loan.bank_id, e.event_date)
    changes.write(session)
    session.flush()


def snapshot_tables(session: Session) -> dict[str, set[tuple[Any, ...]]]:
    """The aggregate tables' rows (zero rows dropped), to compare a maintained state with a rebuild."""
    out: dict[str, set[tuple[Any, ...]]] = {}
    for model, keys in (
        (PortfolioDaily, ("bank_id", "day")),
        (PortfolioMonthly, ("bank_id", "industry", "grade", "month")),
        (PortfolioTotal, ("bank_id",)),
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
