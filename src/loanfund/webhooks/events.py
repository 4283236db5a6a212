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
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.core.db import utcnow
from loanfund.loans.state import LoanState
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
    data = {**as_data(BreakerRead.of(breaker)), "previous_state": previous.value}
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
    changes: Iterable[tuple[LoanFields, LoanState, LoanState]],
    *,
    credit_codes: Mapping[int, str] | None = None,
) -> int:
    """Emit `loan.state_changed` for each (loan, old state, new state) whose new state is one a bank is
    told about (overdue, non-performing, compensated, written off, settled) — many loans in one
    insert. A loan may be a `Loan` or a batch's `LoanDraft` (with its id). `credit_codes` (enterprise
    id → credit code) saves a query when the caller has them. `data` is what `GET /loans/{id}` answers
    without the events, plus `previous_state`. Returns the number of deliveries queued."""
    wanted = [
        (loan, old, new) for loan, old, new in changes if new is not old and new in NOTIFIED_LOAN_STATES
    ]
    if not wanted:
        return 0
    listening = listening_banks(
        session, {loan.bank_id for loan, _, _ in wanted}, EventType.loan_state_changed
    )
    wanted = [change for change in wanted if change[0].bank_id in listening]
    if not wanted:
        return 0
    codes = dict(credit_codes or {})
    missing = {loan.enterprise_id for loan, _, _ in wanted} - set(codes)
    if missing:
        from loanfund.enterprises.models import Enterprise

        rows = session.execute(
            select(Enterprise.id, Enterprise.credit_code).where(Enterprise.id.in_(missing))
        )
        codes.update({eid: code for eid, code in rows})
    return emit_many(session, [_loan_event(loan, old, codes[loan.enterprise_id]) for loan, old, _ in wanted])


def _loan_event(loan: LoanFields, old: LoanState, credit_code: str) -> Outgoing:
    from loanfund.loans.schemas import LoanRead

    now = utcnow()
    read = LoanRead.of_fields(
        loan,
        credit_code,
        application_id=getattr(loan, "application_id", None),
        created_at=getattr(loan, "created_at", None) or now,
        updated_at=getattr(loan, "updated_at", None) or now,
    )
    data: dict[str, Any] = {**as_data(read), "previous_state": old.value}
    return Outgoing(loan.bank_id, EventType.loan_state_changed, data)
