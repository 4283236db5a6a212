"""Loan contracts and the events banks report on them, one at a time — each a submission of one item to
the one write path (`loans.writes`) — and the state changes the fund makes (`transition`)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.audit.service import Actor, record
from loanfund.banks.models import Bank
from loanfund.core.config import Settings
from loanfund.core.errors import NotFound
from loanfund.loans import repository, writes
from loanfund.loans.models import Loan
from loanfund.loans.state import Event, LoanRuleError, LoanState, check_transition
from loanfund.loans.writes import Done, loan_view
from loanfund.portfolio import service as portfolio
from loanfund.webhooks import events as webhook_events


def write_one(
    session: Session,
    settings: Settings,
    actor: Actor,
    bank_id: int,
    item: writes.Item,
    *,
    source: str = "api",
    lookups: writes.Lookups | None = None,
) -> Done:
    """One contract or event through the write path; its refusal raised as it is."""
    (outcome,) = writes.run(
        session, settings, [writes.Submission(bank_id, actor, [item], source)], lookups=lookups
    )
    if outcome.errors:
        raise outcome.errors[0][1]
    return outcome.done[0]


def register_contract(
    session: Session,
    settings: Settings,
    actor: Actor,
    bank: Bank,
    *,
    bank_loan_ref: str,
    credit_code: str,
    amount: Decimal,
    annual_rate_pct: Decimal,
    start_date: date,
    maturity_date: date,
    application_no: str | None = None,
    lookups: writes.Lookups | None = None,
) -> Loan:
    """A contract registered through the write path, as the stored `Loan`."""
    contract = writes.Contract(
        bank_loan_ref, credit_code, amount, annual_rate_pct, start_date, maturity_date, application_no
    )
    done = write_one(session, settings, actor, bank.id, contract, lookups=lookups)
    assert done.loan.id is not None
    loan = session.get(Loan, done.loan.id)
    assert loan is not None
    return loan


def post_event(
    session: Session,
    settings: Settings,
    actor: Actor,
    loan: Loan,
    event: Event,
    *,
    bank_event_ref: str,
    source: str = "api",
    lookups: writes.Lookups | None = None,
) -> Done:
    """An event on `loan` through the write path; `loan`, if the session holds it, is kept in step."""
    item = writes.EventIn(loan.id, event, bank_event_ref)
    return write_one(session, settings, actor, loan.bank_id, item, source=source, lookups=lookups)


def transition(
    session: Session, actor: Actor, loan: Loan, new_state: LoanState, reason: str, day: date
) -> Loan:
    """A state change made by the fund (compensated, written off) on business date `day`, checked
    against the lifecycle and carried into the portfolio aggregates."""
    repository.lock(session, loan)
    try:
        check_transition(loan.state, new_state)
    except LoanRuleError as exc:
        raise writes.rule_error(exc) from exc
    before = loan_view(loan)
    old = loan.snapshot
    loan.state = new_state
    if new_state is LoanState.compensated:
        loan.compensated_on = day
    elif new_state is LoanState.written_off:
        loan.written_off_on = day
    portfolio.apply_deltas(
        session, portfolio.key_of(loan), [portfolio.snapshot_delta(day, old, loan.snapshot, None)]
    )
    session.flush()
    record(
        session,
        actor,
        "loan.state_change",
        "loan",
        loan.id,
        before=before,
        after=loan_view(loan),
        reason=reason,
    )
    webhook_events.loan_state_changed_events(session, [(loan, loan.snapshot, old.state)])
    return loan


def get_for_bank(session: Session, bank_id: int, loan_id: int) -> Loan:
    loan = session.scalar(select(Loan).where(Loan.id == loan_id, Loan.bank_id == bank_id))
    if loan is None:
        raise NotFound("No such loan", code="loan_not_found")
    return loan
