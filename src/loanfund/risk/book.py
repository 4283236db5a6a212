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

from sqlalchemy.orm import Session

from loanfund.loans.state import Contract, Event, LoanState, replay
from loanfund.portfolio.service import COVERED
from loanfund.risk import repository
from loanfund.rules import LoanRules

BAD = frozenset({LoanState.non_performing, LoanState.compensated})
KEPT = frozenset({*COVERED, LoanState.compensated})
STATES = {s.value: s for s in LoanState}


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


def book_at(session: Session, lr: LoanRules, as_of: date) -> list[BookLoan]:
    """Every loan covered (active, overdue, non-performing) or compensated and not yet written off at the
    end of `as_of`, with its outstanding principal then; in no particular order."""
    rows = repository.loans_open_on(session, as_of)
    changed = [r[0] for r in rows if r[-1]]
    events = repository.events_until(session, changed, as_of) if changed else {}
    out = []
    for (
        loan_id,
        bank_id,
        ref,
        grade,
        industry,
        text,
        fen,
        maturity,
        first,
        amount,
        start,
        comp,
        moved,
    ) in rows:
        state = STATES[text]
        if moved:
            history = [
                Event(e.kind, e.event_date, e.principal_fen, e.interest_fen, e.days_past_due or 0)
                for e in events.get(loan_id, [])
            ]
            snap = replay(Contract(amount, start, maturity), history, lr)
            state, fen = snap.state, snap.outstanding_fen
            if comp is not None and comp <= as_of:
                state = LoanState.compensated
            if state not in KEPT or fen <= 0:
                continue
        out.append(BookLoan(loan_id, bank_id, ref, grade, industry, state, fen, maturity, first))
    return out
