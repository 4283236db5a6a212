"""The events the domain emits, each built from the resource's API representation (its Read schema).

One function per event, called by the domain service that makes the change, in its transaction:

    application.routed        applications.service (an application reaches its bank)
    claim.approved / .rejected / .paid    claims.service
    loan.state_changed        claims.service (compensated, written off); the loan write path calls
                              `loan_state_changed_events` with its (loan, old state, new state) triples
    breaker.changed           fund.breakers (evaluated or lifted; the programme-wide one goes to every bank)
    status_report.processed   status_reports.service (with its discrepancy counts by kind)
    month.reopened            `month_reopened`, for the month-reopen feature to call

The schemas are imported where they are used: the services that call these functions are imported
by the modules that define some of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.loans.state import LoanState, Snapshot
from loanfund.webhooks.outbox import EventType, Outgoing, as_data, emit, emit_many, listening_banks

if TYPE_CHECKING:
    from loanfund.applications.models import Application
    from loanfund.claims.models import Claim
    from loanfund.fund.breakers import Breaker, BreakerState
    from loanfund.loans.models import LoanFields
    from loanfund.status_reports.models import Discrepancy, StatusReport

# the loan states a bank is told about
NOTIFIED_LOAN_STATES = frozenset(
    {
        LoanState.overdue,
        LoanState.non_performing,
        LoanState.compensated,
        LoanState.written_off,
        LoanState.settled,
    }
)


def application_routed(session: Session, app: Application) -> int:
    """An eligible application reached its bank (on submission, or when an officer's override makes an
    ineligible one eligible). `data` is what `GET /bank/applications/{no}` answers."""
    from loanfund.applications.schemas import ApplicationRead

    return emit(session, app.bank_id, EventType.application_routed, ApplicationRead.full(app, None))


_CLAIM_EVENTS = {
    "approved": EventType.claim_approved,
    "rejected": EventType.claim_rejected,
    "paid": EventType.claim_paid,
}


def claim_decided(session: Session, claim: Claim) -> int:
    """A claim approved (in full or reduced: `data.approved` is the amount, `data.reduction_reason`
    why it is less than `data.claimed`), rejected or paid. `data` is what `GET /claims/{id}` answers,
    without the recoveries (there are none yet)."""
    from loanfund.claims.schemas import ClaimRead

    return emit(session, claim.bank_id, _CLAIM_EVENTS[claim.state.value], ClaimRead.of(claim))


def breaker_changed(session: Session, breaker: Breaker, previous: BreakerState) -> int:
    """A circuit breaker changed state: `data` is its `GET /fund/breakers` line plus `previous_state`.
    The programme-wide breaker concerns every bank."""
    from loanfund.fund.oversight_router import BreakerRead

    session.flush()  # a breaker row just made gets its column defaults
    from loanfund.banks.models import Bank

    code = None
    if breaker.bank_id is not None:
        bank = session.get(Bank, breaker.bank_id)
        code = bank.code if bank is not None else None
    data = {**as_data(BreakerRead.of(breaker, code)), "previous_state": previous.value}
    return emit(session, breaker.bank_id, EventType.breaker_changed, data)


def status_report_processed(session: Session, report: StatusReport, found: Sequence[Discrepancy]) -> int:
    """A month-end status report was reconciled: `data` is its `GET /status-reports/{id}` summary plus
    `discrepancy_counts`, the number of discrepancies of each kind (the list itself is on the API)."""
    from loanfund.status_reports.schemas import StatusReportRead

    counts = Counter(d.kind for d in found)
    data = {**as_data(StatusReportRead.of(report)), "discrepancy_counts": dict(sorted(counts.items()))}
    return emit(session, report.bank_id, EventType.status_report_processed, data)


class MonthReopened(BaseModel):
    """`data` of `month.reopened`."""

    bank_id: int
    month_end: date
    closed_through: date | None
    reason: str | None


def month_reopened(
    session: Session, *, bank_id: int, month_end: date, closed_through: date | None, reason: str | None
) -> int:
    """A bank's closed reporting month was reopened: `month_end` is the month reopened and
    `closed_through` the last month that stays closed (None: none). For the month-reopen feature to
    call in its transaction."""
    data = MonthReopened(bank_id=bank_id, month_end=month_end, closed_through=closed_through, reason=reason)
    return emit(session, bank_id, EventType.month_reopened, data)


# --- loan.state_changed: for every path that changes a loan's state ------------------------------------


def loan_state_changed_events(
    session: Session,
    changes: Iterable[tuple[LoanFields, Snapshot, LoanState]],
    *,
    at: datetime | None = None,
) -> int:
    """Emit `loan.state_changed` for each (loan, its snapshot just after the change, the state before)
    whose new state is one a bank is told about (overdue, non-performing, compensated, written off,
    settled) — many loans in one insert. A loan may be a `Loan` or the write path's `LoanDraft` (written,
    with its id); the snapshot gives its balances and state at the change (a run may change a loan again
    later). `data` is what `GET /loans/{id}` answers without the events, plus `previous_state`; its
    `updated_at` is `at` when given (the write path's time of writing), else the loan's. Returns the number
    of deliveries queued."""
    from loanfund.enterprises.models import Enterprise
    from loanfund.loans.models import Loan
    from loanfund.loans.schemas import LoanRead

    wanted = [
        (loan, snap, old)
        for loan, snap, old in changes
        if snap.state is not old and snap.state in NOTIFIED_LOAN_STATES
    ]
    if not wanted:
        return 0
    listening = listening_banks(
        session, {loan.bank_id for loan, _, _ in wanted}, EventType.loan_state_changed
    )
    wanted = [change for change in wanted if change[0].bank_id in listening]
    if not wanted:
        return 0
    # what a draft does not hold: the credit code and the time of registration (one query)
    rows = session.execute(
        select(Loan.id, Loan.created_at, Loan.updated_at, Enterprise.credit_code)
        .join(Enterprise, Enterprise.id == Loan.enterprise_id)
        .where(Loan.id.in_({loan.id for loan, _, _ in wanted}))
    )
    stored = {loan_id: (created, updated, code) for loan_id, created, updated, code in rows}
    events = []
    for loan, snap, old in wanted:
        assert loan.id is not None
        created, updated, code = stored[loan.id]
        read = LoanRead.of_snapshot(loan, snap, code, created, at or updated)
        data: dict[str, Any] = {**as_data(read), "previous_state": old.value}
        events.append(Outgoing(loan.bank_id, EventType.loan_state_changed, data))
    return emit_many(session, events)
