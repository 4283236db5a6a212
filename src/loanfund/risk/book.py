"""The loan book at the end of a date: each loan's state and outstanding principal then.

A loan's row holds its state now, which is its state at any date after its last event and the fund's
last transition on it (compensation, write-off). Only loans changed after the date are replayed, from
their events up to it, through the same state machine the write path uses (`loans.state.replay`); so
the book of today costs one query, and the book of an earlier date one more per thousand loans changed
since.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from loanfund.loans.state import Contract, Event, LoanState, replay
from loanfund.portfolio.service import COVERED
from loanfund.risk import repository

BAD = frozenset({LoanState.non_performing, LoanState.compensated})


@dataclass(frozen=True, slots=True)
class BookLoan:
    id: int
    bank_id: int
    bank_loan_ref: str
    grade: str
    industry: str
    state: LoanState  # at the end of the date
    outstanding_fen: int
    maturity_date: date
    first_disbursed_on: date

    @property
    def covered(self) -> bool:
        return self.state in COVERED


def _changed_after(row: Any, day: date) -> bool:
    return any(
        d is not None and d > day for d in (row.last_event_date, row.compensated_on, row.written_off_on)
    )


def book_at(session: Session, npl_days: int, as_of: date) -> list[BookLoan]:
    """Every loan covered (active, overdue, non-performing) or compensated and not yet written off at the
    end of `as_of`, with its outstanding principal then; in no particular order."""
    rows = repository.loans_open_on(session, as_of)
    changed = {r.id for r in rows if _changed_after(r, as_of)}
    events = repository.events_until(session, sorted(changed), as_of) if changed else {}
    out = []
    for r in rows:
        state, outstanding = LoanState(r.state), int(r.outstanding_fen)
        if r.id in changed:
            contract = Contract(r.contract_amount_fen, r.start_date, r.maturity_date)
            history = [
                Event(e.kind, e.event_date, e.principal_fen, e.interest_fen, e.days_past_due or 0)
                for e in events.get(r.id, [])
            ]
            snap = replay(contract, history, npl_days)
            state, outstanding = snap.state, snap.outstanding_fen
            if r.compensated_on is not None and r.compensated_on <= as_of:
                state = LoanState.compensated
        if (state in COVERED or state is LoanState.compensated) and outstanding > 0:
            out.append(
                BookLoan(
                    id=r.id,
                    bank_id=r.bank_id,
                    bank_loan_ref=r.bank_loan_ref,
                    grade=r.grade,
                    industry=r.industry,
                    state=state,
                    outstanding_fen=outstanding,
                    maturity_date=r.maturity_date,
                    first_disbursed_on=r.first_disbursed_on,
                )
            )
    return out
