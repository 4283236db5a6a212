"""Loan contracts and the events banks report on them. Every change goes through `register_contract`,
`post_event` or `transition`, which check the rules and write the audit record."""

from __future__ import annotations

import calendar
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from operator import attrgetter
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loanfund.applications import service as application_service
from loanfund.applications.models import Application
from loanfund.audit.service import Actor, record
from loanfund.banks.models import Bank, BankStatus
from loanfund.core.clock import business_today
from loanfund.core.config import Settings
from loanfund.core.errors import Conflict, InvalidInput, LoanfundError, NotFound
from loanfund.core.money import to_fen, yuan_str
from loanfund.enterprises import repository as enterprise_repo
from loanfund.enterprises.models import Enterprise
from loanfund.fund.exposure import CoverageGate
from loanfund.loans import repository
from loanfund.loans.models import Loan, LoanEvent, LoanFields
from loanfund.loans.state import (
    OPEN_FOR_BANK_EVENTS,
    Event,
    EventKind,
    LoanRuleError,
    LoanState,
    Snapshot,
    apply,
    check_transition,
    replay,
)
from loanfund.portfolio import service as portfolio
from loanfund.rates import service as rates
from loanfund.status_reports.repository import closed_through


def add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class Borrower(Protocol):
    """What a contract needs of its enterprise: an `Enterprise`, or what a batch reads of one
    (`enterprises.repository.EnterpriseRef`)."""

    @property
    def id(self) -> int: ...

    @property
    def industry(self) -> str: ...

    @property
    def is_registered_tech(self) -> bool: ...


@dataclass
class Lookups:
    """Per-request caches for the dated tables and the registry, so a batch of thousands of items does
    not ask the database the same question thousands of times."""

    session: Session
    settings: Settings
    enterprises: dict[str, Borrower | None] = field(default_factory=dict)
    max_rates: dict[date, Decimal] = field(default_factory=dict)
    max_lines: dict[date, int] = field(default_factory=dict)
    closed: dict[int, date | None] = field(default_factory=dict)
    locked: set[int] = field(default_factory=set)
    touched_banks: set[int] = field(default_factory=set)  # whose NPL ratio may have moved
    _gate: CoverageGate | None = None
    _today: date | None = None
    _rules: rates.RuleTables | None = None

    @property
    def coverage(self) -> CoverageGate:
        if self._gate is None:
            self._gate = CoverageGate(self.session, self.settings)
        return self._gate

    @property
    def today(self) -> date:
        """The business date, read once per request."""
        if self._today is None:
            self._today = business_today(self.settings)
        return self._today

    def enterprise(self, credit_code: str) -> Borrower | None:
        if credit_code not in self.enterprises:
            self.enterprises[credit_code] = enterprise_repo.by_code(self.session, credit_code)
        return self.enterprises[credit_code]

    def prefetch_enterprises(self, credit_codes: Iterable[str]) -> None:
        """Load many enterprises in one query (unknown codes are remembered as unknown)."""
        wanted = set(credit_codes) - self.enterprises.keys()
        if not wanted:
            return
        found = enterprise_repo.by_codes(self.session, wanted)
        for code in wanted:
            self.enterprises[code] = found.get(code)

    @property
    def rules(self) -> rates.RuleTables:
        if self._rules is None:
            self._rules = rates.RuleTables(self.session, self.settings)
        return self._rules

    def max_rate(self, day: date) -> Decimal:
        if day not in self.max_rates:
            self.max_rates[day] = self.rules.max_rate_on(day)
        return self.max_rates[day]

    def max_line(self, day: date) -> int:
        if day not in self.max_lines:
            self.max_lines[day] = max(self.rules.credit_line_table_on(day).values())
        return self.max_lines[day]

    def lock(self, loan: Loan) -> None:
        if loan.id not in self.locked:
            repository.lock(self.session, loan)
            self.locked.add(loan.id)

    def closed_through(self, bank_id: int) -> date | None:
        if bank_id not in self.closed:
            self.closed[bank_id] = closed_through(self.session, bank_id)
        return self.closed[bank_id]


def _field_error(code: str, message: str, fld: str) -> InvalidInput:
    return InvalidInput(message, code=code, details=[{"field": fld, "message": message}])


def _rule_error(exc: LoanRuleError) -> LoanfundError:
    details = [{"field": exc.field, "message": exc.message}] if exc.field else None
    if exc.conflict:
        return Conflict(exc.message, code=exc.code, details=details)
    return InvalidInput(exc.message, code=exc.code, details=details)


_LOAN_FIELDS = [
    "state",
    "disbursed_fen",
    "principal_repaid_fen",
    "outstanding_fen",
    "days_past_due",
    "npl_since",
]


_loan_view_values = attrgetter(*_LOAN_FIELDS)


def loan_view(loan: LoanFields) -> dict[str, Any]:
    """The loan fields an event's audit record shows before and after."""
    return dict(zip(_LOAN_FIELDS, _loan_view_values(loan), strict=True))


def check_contract(
    lk: Lookups,
    bank: Bank,
    *,
    credit_code: str,
    amount: Decimal,
    annual_rate_pct: Decimal,
    start_date: date,
    maturity_date: date,
) -> tuple[Borrower, int]:
    """The rules a contract must meet on its own: an active bank, a registered tech enterprise, the
    term, the rate cap and the credit line in force on its start date. Returns the enterprise and the
    amount in fen."""
    settings = lk.settings
    if bank.status is not BankStatus.active:
        raise Conflict(f"Bank {bank.code} is suspended and cannot register loans", code="bank_suspended")
    ent = lk.enterprise(credit_code)
    if ent is None:
        raise _field_error(
            "enterprise_unknown", f"No enterprise {credit_code} in the registry", "credit_code"
        )
    if not ent.is_registered_tech:
        raise _field_error(
            "enterprise_not_registered", f"{credit_code} is not a registered tech enterprise", "credit_code"
        )
    amount_fen = to_fen(amount)
    if maturity_date <= start_date:
        raise _field_error("maturity_before_start", "maturity_date must be after start_date", "maturity_date")
    if maturity_date > add_months(start_date, settings.max_term_months):
        raise _field_error(
            "term_too_long", f"The term may not exceed {settings.max_term_months} months", "maturity_date"
        )
    cap = lk.max_rate(start_date)
    if annual_rate_pct > cap:
        raise _field_error(
            "rate_above_cap",
            f"The rate may not exceed {cap}% (one-year LPR + cap) on {start_date}",
            "annual_rate_pct",
        )
    line = lk.max_line(start_date)
    if amount_fen > line:
        raise _field_error(
            "amount_exceeds_credit_line",
            f"The amount exceeds the highest credit line ({yuan_str(line)})",
            "amount",
        )
    return ent, amount_fen


def approved_application(
    session: Session,
    bank: Bank,
    application_no: str,
    ent: Borrower,
    amount_fen: int,
    annual_rate_pct: Decimal,
    start_date: date,
    maturity_date: date,
) -> Application:
    """The approved application a contract comes from (locked), and the contract within its approval."""
    application = application_service.get_approved_for_bank(session, bank.id, application_no)
    _check_against_approval(application, ent, amount_fen, annual_rate_pct, start_date, maturity_date)
    return application


def ref_taken(bank_loan_ref: str, details: dict[str, Any]) -> Conflict:
    return Conflict(
        f"Loan {bank_loan_ref} is already registered", code="bank_loan_ref_taken", details=details
    )


def quota_exceeded() -> Conflict:
    return Conflict("The contract would exceed the bank's lending quota", code="bank_quota_exceeded")


def committed_fen(session: Session, bank_id: int) -> int:
    """What counts against a bank's lending quota: contract amount less principal repaid, open loans."""
    committed = session.scalar(
        select(func.coalesce(func.sum(Loan.contract_amount_fen - Loan.principal_repaid_fen), 0)).where(
            Loan.bank_id == bank_id, Loan.state.in_(list(OPEN_FOR_BANK_EVENTS))
        )
    )
    return int(committed or 0)


def quota_part(loan: LoanFields) -> int:
    """A loan's part in `committed_fen`."""
    if loan.state in OPEN_FOR_BANK_EVENTS:
        return loan.contract_amount_fen - loan.principal_repaid_fen
    return 0


def new_loan_values(
    bank: Bank,
    ent: Borrower,
    application: Application | None,
    *,
    bank_loan_ref: str,
    amount_fen: int,
    annual_rate_pct: Decimal,
    start_date: date,
    maturity_date: date,
) -> dict[str, Any]:
    """The fields of a new loan from a checked contract (its snapshot: approved, nothing drawn)."""
    return {
        "bank_id": bank.id,
        "enterprise_id": ent.id,
        "application_id": application.id if application is not None else None,
        "industry": ent.industry,
        "grade": (application.grade if application is not None else None) or "U",
        "bank_loan_ref": bank_loan_ref,
        "contract_amount_fen": amount_fen,
        "annual_rate_pct": annual_rate_pct,
        "start_date": start_date,
        "maturity_date": maturity_date,
    }


def contract_audit(loan: LoanFields, credit_code: str) -> dict[str, Any]:
    return {
        "bank_loan_ref": loan.bank_loan_ref,
        "credit_code": credit_code,
        "amount": yuan_str(loan.contract_amount_fen),
        "annual_rate_pct": loan.annual_rate_pct,
        "start_date": loan.start_date,
        "maturity_date": loan.maturity_date,
        "state": loan.state,
    }


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
    lookups: Lookups | None = None,
) -> Loan:
    lk = lookups or Lookups(session, settings)
    ent, amount_fen = check_contract(
        lk,
        bank,
        credit_code=credit_code,
        amount=amount,
        annual_rate_pct=annual_rate_pct,
        start_date=start_date,
        maturity_date=maturity_date,
    )
    application = None
    if application_no is not None:
        application = approved_application(
            session, bank, application_no, ent, amount_fen, annual_rate_pct, start_date, maturity_date
        )
    existing = repository.by_ref(session, bank.id, bank_loan_ref)
    if existing is not None:
        raise ref_taken(bank_loan_ref, {"loan_id": existing.id})
    if bank.lending_quota_fen is not None:
        if committed_fen(session, bank.id) + amount_fen > bank.lending_quota_fen:
            raise quota_exceeded()
    # a contract is not yet covered principal: it must fit under the cap, and is counted when disbursed
    lk.coverage.admit(bank, amount_fen, start_date, counts=False)
    loan = Loan(
        **new_loan_values(
            bank,
            ent,
            application,
            bank_loan_ref=bank_loan_ref,
            amount_fen=amount_fen,
            annual_rate_pct=annual_rate_pct,
            start_date=start_date,
            maturity_date=maturity_date,
        )
    )
    loan.set_snapshot(Snapshot())
    session.add(loan)
    session.flush()
    if application is not None:
        application_service.mark_lent(session, actor, application, loan.id)
    record(session, actor, "loan.create", "loan", loan.id, after=contract_audit(loan, credit_code))
    return loan


def _check_against_approval(
    app: Application,
    ent: Borrower,
    amount_fen: int,
    annual_rate_pct: Decimal,
    start_date: date,
    maturity_date: date,
) -> None:
    """A contract from an application stays within what the bank approved."""
    if app.enterprise_id != ent.id:
        raise _field_error("application_mismatch", "The application is another enterprise's", "credit_code")
    assert app.approved_amount_fen is not None
    assert app.approved_term_months is not None
    assert app.approved_rate_pct is not None
    if amount_fen > app.approved_amount_fen:
        raise _field_error(
            "amount_exceeds_approval", f"The approval was for {yuan_str(app.approved_amount_fen)}", "amount"
        )
    if maturity_date > add_months(start_date, app.approved_term_months):
        raise _field_error(
            "term_exceeds_approval",
            f"The approval was for {app.approved_term_months} months",
            "maturity_date",
        )
    if annual_rate_pct > app.approved_rate_pct:
        raise _field_error(
            "rate_exceeds_approval", f"The approval was at {app.approved_rate_pct}%", "annual_rate_pct"
        )


def check_event_date(lk: Lookups, bank_id: int, event: Event) -> None:
    """Not in the future, and not in a month the bank's status report has closed."""
    if event.event_date > lk.today:
        raise _field_error("event_in_future", f"{event.event_date} is in the future", "date")
    closed = lk.closed_through(bank_id)
    if closed is not None and event.event_date <= closed:
        raise Conflict(
            f"The reporting month up to {closed} is closed by the bank's status report",
            code="reporting_month_closed",
            details=[{"field": "date", "message": f"must be after {closed}"}],
        )


def event_ref_taken(bank_event_ref: str, details: dict[str, Any]) -> Conflict:
    return Conflict(
        f"Event {bank_event_ref} is already recorded", code="bank_event_ref_taken", details=details
    )


def plan_event(
    loan: LoanFields, event: Event, npl_days: int, history: Callable[[], list[Event]]
) -> tuple[Snapshot, list[portfolio.Delta]]:
    """The loan after `event` and the aggregate deltas it causes, without changing anything.

    An event dated on or after the loan's last one is applied to its snapshot; a backdated one replays
    every event in date order (`history()` gives the loan's events so far, in posting order), so that
    the result is as if the events had been posted in date order."""
    try:
        if loan.state not in OPEN_FOR_BANK_EVENTS:
            raise LoanRuleError(
                "loan_state_invalid",
                f"The loan is {loan.state.value}; it takes no more bank events",
                conflict=True,
            )
        if loan.last_event_date is None or event.event_date >= loan.last_event_date:
            before = loan.snapshot
            snap = apply(before, loan.contract, event, npl_days)
            return snap, [portfolio.snapshot_delta(event.event_date, before, snap, event)]
        past = history()
        snap = replay(loan.contract, [*past, event], npl_days)
        check_transition(loan.state, snap.state)
    except LoanRuleError as exc:
        raise _rule_error(exc) from exc
    # the loan's part in the aggregates is taken out and put back as the replay has it
    deltas = [d.negated() for d in portfolio.history_deltas(loan.contract, past, npl_days)]
    deltas += portfolio.history_deltas(loan.contract, [*past, event], npl_days)
    return snap, deltas


def event_row(event: Event, bank_event_ref: str) -> dict[str, Any]:
    """The `loan_events` fields of an accepted event, less its loan, bank and source."""
    return {
        "bank_event_ref": bank_event_ref,
        "kind": event.kind,
        "event_date": event.event_date,
        "principal_fen": event.principal_fen,
        "interest_fen": event.interest_fen,
        "days_past_due": event.days_past_due if event.kind is EventKind.delinquency else None,
    }


def post_event(
    session: Session,
    settings: Settings,
    actor: Actor,
    loan: Loan,
    event: Event,
    *,
    bank_event_ref: str,
    source: str = "api",
    lookups: Lookups | None = None,
) -> LoanEvent:
    lk = lookups or Lookups(session, settings)
    check_event_date(lk, loan.bank_id, event)
    existing = repository.event_by_ref(session, loan.bank_id, bank_event_ref)
    if existing is not None:
        raise event_ref_taken(bank_event_ref, {"event_id": existing.id, "loan_id": existing.loan_id})
    lk.lock(loan)
    snap, deltas = plan_event(
        loan,
        event,
        settings.npl_days,
        lambda: stored_events(session, loan.id),
    )
    if event.kind is EventKind.disbursement:
        bank = session.get(Bank, loan.bank_id)
        assert bank is not None
        lk.coverage.admit(bank, event.principal_fen, event.event_date)
    if portfolio.moves_npl_ratio(deltas):
        lk.touched_banks.add(loan.bank_id)
    row = LoanEvent(loan_id=loan.id, bank_id=loan.bank_id, source=source, **event_row(event, bank_event_ref))
    session.add(row)
    before = loan_view(loan)
    loan.set_snapshot(snap)
    changes = portfolio.Changes()
    changes.add(portfolio.key_of(loan), deltas)
    if event.kind is EventKind.disbursement:
        changes.borrowed(loan.enterprise_id, loan.bank_id, event.event_date)
    changes.write(session)
    session.flush()
    record(
        session,
        actor,
        f"loan.{event.kind.value}",
        "loan",
        loan.id,
        before=before,
        after={**loan_view(loan), "event_id": row.id, "bank_event_ref": bank_event_ref},
    )
    return row


def stored_events(session: Session, loan_id: int, *, excluding: Collection[int] = ()) -> list[Event]:
    """A loan's stored events in posting order, but those with an id in `excluding`."""
    return [_as_event(e) for e in repository.events_of(session, loan_id) if e.id not in excluding]


def _as_event(e: LoanEvent) -> Event:
    return Event(
        kind=e.kind,
        event_date=e.event_date,
        principal_fen=e.principal_fen,
        interest_fen=e.interest_fen,
        days_past_due=e.days_past_due or 0,
    )


def transition(
    session: Session, actor: Actor, loan: Loan, new_state: LoanState, reason: str, day: date
) -> Loan:
    """A state change made by the fund (compensated, written off) on business date `day`, checked
    against the lifecycle and carried into the portfolio aggregates."""
    repository.lock(session, loan)
    try:
        check_transition(loan.state, new_state)
    except LoanRuleError as exc:
        raise _rule_error(exc) from exc
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
    return loan


def evaluate_breakers(session: Session, settings: Settings, actor: Actor, lookups: Lookups) -> None:
    """After a request's loan changes: re-evaluate the circuit breaker of every bank it touched."""
    from loanfund.fund import breakers

    for bank_id in sorted(lookups.touched_banks):
        breakers.evaluate_bank(session, settings, actor, bank_id)
    lookups.touched_banks.clear()


def get_for_bank_locked(session: Session, lk: Lookups, bank_id: int, loan_id: int) -> tuple[Loan, str]:
    """The bank's loan, freshly loaded and locked for the rest of the transaction (so `post_event` with
    the same `lk` does not lock it again), with its enterprise's credit code — one query."""
    stmt = (
        select(Loan, Enterprise.credit_code)
        .join(Enterprise, Enterprise.id == Loan.enterprise_id)
        .where(Loan.id == loan_id, Loan.bank_id == bank_id)
        .with_for_update(of=Loan)
        .execution_options(populate_existing=True)
    )
    row = session.execute(stmt).first()
    if row is None:
        raise NotFound("No such loan", code="loan_not_found")
    loan, credit_code = row
    lk.locked.add(loan.id)
    return loan, credit_code


def get_for_bank(session: Session, bank_id: int, loan_id: int) -> Loan:
    loan = session.scalar(select(Loan).where(Loan.id == loan_id, Loan.bank_id == bank_id))
    if loan is None:
        raise NotFound("No such loan", code="loan_not_found")
    return loan


def loan_unknown(bank_loan_ref: str) -> InvalidInput:
    return _field_error("loan_unknown", f"No loan {bank_loan_ref} of this bank", "bank_loan_ref")


def get_by_ref_for_bank(session: Session, bank_id: int, bank_loan_ref: str) -> Loan:
    loan = repository.by_ref(session, bank_id, bank_loan_ref)
    if loan is None:
        raise loan_unknown(bank_loan_ref)
    return loan
