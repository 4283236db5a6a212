"""The one way loans are written: contracts, disbursements, repayments and delinquency reports.

Every loan write — a single request, a batch of thousands, the single requests that group commit
gathers into one transaction (`loans.group_commit`), the delinquency a monthly status report updates,
the demo's history — is a list of *submissions* handed to `run`. A submission is what one caller sent
at once: a single request is a submission of one item, a batch a submission of many. A submission is
all or nothing; submissions are independent of each other (one refused leaves the others to be written),
which is what group commit and status reports need.

`run` works in two steps:

* **planning**, item by item in order, on plain `LoanDraft` copies of the loans: every rule is checked
  (`loanfund.rules` and the lifecycle in `loans.state`) before the item changes anything, so a refused
  item leaves no trace, and every refused item is collected; an accepted item changes its draft, and
  its event, audit record and aggregate deltas are kept. Before the items, a few statements read all
  they need: the enterprises named, the loans referred to (locked, in id order), the event references
  already used, what counts against a bank's quota, the banks' closed months;
* **applying**, a part of `_PART` items at a time while planning goes on: new loans, changed loans,
  events and audit records, each as one statement per part, queued on the session's `bulk.pipeline`
  (PostgreSQL writes one part while Python plans the next); then the aggregates (`portfolio.Changes`),
  once per row, last; then the circuit breakers of the banks whose NPL ratio may have moved.

Loans loaded as ORM objects in the session (the demo, claims) are kept in step with what was written.
A contract from an application is inserted as soon as it is planned, as marking the application lent
needs the loan's id.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any, Protocol

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from loanfund import rules
from loanfund.applications import service as application_service
from loanfund.applications.models import Application
from loanfund.audit.service import Actor, Attributed, Entry, record_each, record_many
from loanfund.banks.models import Bank, BankStatus
from loanfund.core import bulk
from loanfund.core.clock import business_today
from loanfund.core.config import Settings
from loanfund.core.context import request_id_var
from loanfund.core.db import utcnow
from loanfund.core.errors import Conflict, InvalidInput, LoanfundError, NotFound, field_error
from loanfund.core.money import to_fen, yuan_text
from loanfund.enterprises import repository as enterprise_repo
from loanfund.enterprises.models import ENTERPRISES
from loanfund.enterprises.repository import EnterpriseRef
from loanfund.fund.exposure import CoverageGate
from loanfund.loans import repository
from loanfund.loans.models import DRAFT_COLUMNS, EVENTS, LOANS, SNAPSHOT_COLUMNS, Loan, LoanDraft
from loanfund.loans.state import (
    OPEN_FOR_BANK_EVENTS,
    Event,
    EventKind,
    LoanRuleError,
    Snapshot,
    apply,
    check_transition,
    replay,
)
from loanfund.portfolio import service as portfolio
from loanfund.rates import service as rates
from loanfund.status_reports.repository import closed_through_many
from loanfund.webhooks import events as webhook_events

# items planned between two handovers to the pipeline: small enough that the database starts early and
# the last part's writes are short, large enough that each statement still carries many rows
_PART = 100


# --- what is submitted ------------------------------------------------------------------------------------


class ContractIn(Protocol):
    """A contract to register: `LoanCreate` (single requests), `BatchContract`, or `Contract` below."""

    @property
    def bank_loan_ref(self) -> str: ...
    @property
    def credit_code(self) -> str: ...
    @property
    def application_no(self) -> str | None: ...
    @property
    def amount(self) -> Decimal: ...
    @property
    def annual_rate_pct(self) -> Decimal: ...
    @property
    def start_date(self) -> date: ...
    @property
    def maturity_date(self) -> date: ...


@dataclass(frozen=True, slots=True)
class Contract:
    bank_loan_ref: str
    credit_code: str
    amount: Decimal
    annual_rate_pct: Decimal
    start_date: date
    maturity_date: date
    application_no: str | None = None


@dataclass(frozen=True, slots=True)
class EventIn:
    """An event on a loan named by its id (single requests: another bank's loan is 404) or by the
    bank's reference (batches: an unknown one is a refused item)."""

    loan: int | str
    event: Event
    bank_event_ref: str


Item = ContractIn | EventIn


@dataclass
class Submission:
    """What one caller sent at once, with who it is."""

    bank_id: int
    actor: Actor
    items: Sequence[Item]
    source: str = "api"  # api | batch | status_report
    request_id: str | None = None  # the current request's unless given (group commit gives each its own)


@dataclass(slots=True)
class Done:
    """An accepted item: its loan (written, with its id; later items of the run may change it), the
    loan's snapshot just after this item, its credit code and when it was registered; when the item was
    written; for an event the stored row (with its id); what the audit record shows before and after."""

    loan: LoanDraft
    snapshot: Snapshot
    credit_code: str
    created_at: datetime
    at: datetime
    event: dict[str, Any] | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


@dataclass
class Outcome:
    """A submission's result: its accepted items, or — if any item was refused — every refusal (by the
    item's index) and nothing written."""

    done: list[Done] = field(default_factory=list)
    errors: list[tuple[int, LoanfundError]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


# --- per-transaction lookups -----------------------------------------------------------------------------


@dataclass
class Lookups:
    """What a run reads once and asks many times: the dated tables, the registry, the banks and their
    closed months, the coverage gate. The demo keeps one across the runs of a day; whoever passes one
    to `run` also owns the breakers of the banks it collects in `touched_banks` (`evaluate_breakers`)."""

    session: Session
    settings: Settings
    enterprises: dict[str, EnterpriseRef | None] = field(default_factory=dict)
    closed: dict[int, date | None] = field(default_factory=dict)
    banks: dict[int, Bank] = field(default_factory=dict)
    touched_banks: set[int] = field(default_factory=set)  # whose NPL ratio may have moved
    _gate: CoverageGate | None = None
    _today: date | None = None
    _tables: rates.RuleTables | None = None

    @property
    def coverage(self) -> CoverageGate:
        if self._gate is None:
            self._gate = CoverageGate(self.session, self.settings)
        return self._gate

    def new_day(self) -> Lookups:
        """The same caches, with the coverage gate started afresh (it sees the fund as it stands)."""
        return Lookups(self.session, self.settings, self.enterprises, self.closed, self.banks)

    @property
    def today(self) -> date:
        """The business date, read once."""
        if self._today is None:
            self._today = business_today(self.settings)
        return self._today

    @property
    def tables(self) -> rates.RuleTables:
        if self._tables is None:
            self._tables = rates.RuleTables(self.session, self.settings)
        return self._tables

    def enterprise(self, credit_code: str) -> EnterpriseRef | None:
        if credit_code not in self.enterprises:
            self.prefetch_enterprises([credit_code])
        return self.enterprises[credit_code]

    def prefetch_enterprises(self, credit_codes: Iterable[str]) -> None:
        """Load many enterprises in one query (unknown codes are remembered as unknown)."""
        wanted = set(credit_codes) - self.enterprises.keys()
        if not wanted:
            return
        found = enterprise_repo.by_codes(self.session, wanted)
        for code in wanted:
            self.enterprises[code] = found.get(code)

    def bank(self, bank_id: int) -> Bank:
        if bank_id not in self.banks:
            bank = self.session.get(Bank, bank_id)
            if bank is None:
                raise NotFound("No such bank", code="bank_not_found")
            self.banks[bank_id] = bank
        return self.banks[bank_id]

    def prefetch_closed(self, bank_ids: Collection[int]) -> None:
        wanted = set(bank_ids) - self.closed.keys()
        if wanted:
            self.closed.update(closed_through_many(self.session, wanted))


# --- refusals ----------------------------------------------------------------------------------------------


def rule_error(exc: LoanRuleError) -> LoanfundError:
    if exc.conflict:
        details = [{"field": exc.field, "message": exc.message}] if exc.field else None
        return Conflict(exc.message, code=exc.code, details=details)
    if exc.field:
        return field_error(exc.code, exc.message, exc.field)
    return InvalidInput(exc.message, code=exc.code)


def loan_not_found() -> NotFound:
    return NotFound("No such loan", code="loan_not_found")


def loan_unknown(bank_loan_ref: str) -> InvalidInput:
    return field_error("loan_unknown", f"No loan {bank_loan_ref} of this bank", "bank_loan_ref")


def ref_taken(bank_loan_ref: str, details: dict[str, Any]) -> Conflict:
    return Conflict(
        f"Loan {bank_loan_ref} is already registered", code="bank_loan_ref_taken", details=details
    )


def event_ref_taken(bank_event_ref: str, details: dict[str, Any]) -> Conflict:
    return Conflict(
        f"Event {bank_event_ref} is already recorded", code="bank_event_ref_taken", details=details
    )


# --- the contract rules --------------------------------------------------------------------------------


def check_contract(lk: Lookups, bank: Bank, item: ContractIn) -> tuple[EnterpriseRef, int]:
    """The rules a contract must meet on its own: an active bank, a registered tech enterprise, the
    term, the rate cap in force on its start date and — for a contract without an application — the
    bank's permission to register one and the enterprise's own grade's credit line on its start date.
    Returns the enterprise and the amount in fen."""
    settings = lk.settings
    if bank.status is not BankStatus.active:
        raise Conflict(f"Bank {bank.code} is suspended and cannot register loans", code="bank_suspended")
    ent = lk.enterprise(item.credit_code)
    if ent is None:
        raise field_error(
            "enterprise_unknown", f"No enterprise {item.credit_code} in the registry", "credit_code"
        )
    if not ent.is_registered_tech:
        raise field_error(
            "enterprise_not_registered",
            f"{item.credit_code} is not a registered tech enterprise",
            "credit_code",
        )
    amount_fen = to_fen(item.amount)
    start, maturity = item.start_date, item.maturity_date
    if maturity <= start:
        raise field_error("maturity_before_start", "maturity_date must be after start_date", "maturity_date")
    if maturity > rules.latest_maturity(start, settings):
        raise field_error(
            "term_too_long", f"The term may not exceed {settings.max_term_months} months", "maturity_date"
        )
    cap = lk.tables.max_rate_on(start)
    if item.annual_rate_pct > cap:
        raise field_error(
            "rate_above_cap",
            f"The rate may not exceed {cap}% (one-year LPR + {settings.rate_cap_bp} bp) on {start}",
            "annual_rate_pct",
        )
    if item.application_no is None:
        _check_without_application(lk, bank, ent, amount_fen, start)
    return ent, amount_fen


def _check_without_application(
    lk: Lookups, bank: Bank, ent: EnterpriseRef, amount_fen: int, start: date
) -> None:
    """A contract without an application (a historical import) needs the bank's permission, and stays
    within the credit line of the enterprise's own grade in the table in force on its start date."""
    if not bank.allow_contracts_without_application:
        raise Conflict(
            f"Bank {bank.code} registers contracts from approved applications only; give application_no "
            "(the bureau can allow historical imports for a bank)",
            code="application_required",
            details=[{"field": "application_no", "message": "required for this bank"}],
        )
    if ent.grade is None:
        raise field_error(
            "enterprise_not_graded",
            f"{ent.credit_code} has no knowledge-value grade on record, so no credit line to check the "
            "contract against; register it from an application or have the bureau record the grade",
            "credit_code",
        )
    line = lk.tables.credit_line_table_on(start)[ent.grade]
    if amount_fen > line:
        raise field_error(
            "amount_exceeds_credit_line",
            f"The amount exceeds the credit line of grade {ent.grade} on {start} ({yuan_text(line)})",
            "amount",
        )


def check_against_approval(app: Application, ent: EnterpriseRef, amount_fen: int, item: ContractIn) -> None:
    """A contract from an application stays within what the bank approved, and starts no earlier than
    the approval."""
    if app.enterprise_id != ent.id:
        raise field_error("application_mismatch", "The application is another enterprise's", "credit_code")
    assert app.approved_amount_fen is not None
    assert app.approved_term_months is not None
    assert app.approved_rate_pct is not None
    if app.decision_date is not None and item.start_date < app.decision_date:
        raise field_error(
            "contract_before_approval",
            f"The contract starts before the application was approved ({app.decision_date})",
            "start_date",
        )
    if amount_fen > app.approved_amount_fen:
        raise field_error(
            "amount_exceeds_approval", f"The approval was for {yuan_text(app.approved_amount_fen)}", "amount"
        )
    if item.maturity_date > rules.add_months(item.start_date, app.approved_term_months):
        raise field_error(
            "term_exceeds_approval",
            f"The approval was for {app.approved_term_months} months",
            "maturity_date",
        )
    if item.annual_rate_pct > app.approved_rate_pct:
        raise field_error(
            "rate_exceeds_approval", f"The approval was at {app.approved_rate_pct}%", "annual_rate_pct"
        )


def committed_fen(session: Session, bank_id: int) -> int:
    """What counts against a bank's lending quota: contract amount less principal repaid, open loans."""
    committed = session.scalar(
        select(func.coalesce(func.sum(Loan.contract_amount_fen - Loan.principal_repaid_fen), 0)).where(
            Loan.bank_id == bank_id, Loan.state.in_(list(OPEN_FOR_BANK_EVENTS))
        )
    )
    return int(committed or 0)


def _quota_part(loan: LoanDraft) -> int:
    """A loan's part in `committed_fen`."""
    if loan.state in OPEN_FOR_BANK_EVENTS:
        return loan.contract_amount_fen - loan.principal_repaid_fen
    return 0


# --- the event rules -------------------------------------------------------------------------------------


def plan_event(
    loan: LoanDraft, event: Event, lr: rules.LoanRules, history: Callable[[], list[Event]]
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
            snap = apply(before, loan.contract, event, lr)
            return snap, [portfolio.snapshot_delta(event.event_date, before, snap, event)]
        past = history()
        snap = replay(loan.contract, [*past, event], lr)
        check_transition(loan.state, snap.state)
    except LoanRuleError as exc:
        raise rule_error(exc) from exc
    # the loan's part in the aggregates is taken out and put back as the replay has it
    deltas = [d.negated() for d in portfolio.history_deltas(loan.contract, past, lr)]
    deltas += portfolio.history_deltas(loan.contract, [*past, event], lr)
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


# --- what the audit record shows ---------------------------------------------------------------------------

_LOAN_FIELDS = (
    "state",
    "disbursed_fen",
    "principal_repaid_fen",
    "outstanding_fen",
    "days_past_due",
    "npl_since",
    "early_default",
)
_loan_view_values = attrgetter(*_LOAN_FIELDS)


def loan_view(loan: Any) -> dict[str, Any]:
    """The loan fields an event's audit record shows before and after."""
    return dict(zip(_LOAN_FIELDS, _loan_view_values(loan), strict=True))


def contract_audit(loan: LoanDraft, credit_code: str) -> dict[str, Any]:
    return {
        "bank_loan_ref": loan.bank_loan_ref,
        "credit_code": credit_code,
        "amount": yuan_text(loan.contract_amount_fen),
        "annual_rate_pct": loan.annual_rate_pct,
        "start_date": loan.start_date,
        "maturity_date": loan.maturity_date,
        "state": loan.state,
    }


_UNREAD: Any = object()


# --- the run ----------------------------------------------------------------------------------------


def run(
    session: Session,
    settings: Settings,
    submissions: Sequence[Submission],
    *,
    lookups: Lookups | None = None,
    views: bool = True,
) -> list[Outcome]:
    """Plan and apply `submissions` in the session's transaction (see the module's docstring); one
    outcome each. A submission of several items must come alone. The circuit breakers of the banks
    whose NPL ratio may have moved are evaluated at the end, unless the caller gave its own `lookups`
    (then they are left in its `touched_banks`). Without `views` the accepted items do not carry what an
    answer shows of a stored loan (its credit code, when it was registered): a batch answers ids only."""
    assert len(submissions) == 1 or all(len(s.items) == 1 for s in submissions)
    plan = _Run(session, settings, lookups or Lookups(session, settings), views)
    several = any(len(s.items) > 1 for s in submissions)
    savepoint = session.begin_nested() if several else None
    try:
        with bulk.pipeline(session):
            outcomes = plan.run(submissions)
    except BaseException:
        if savepoint is not None and savepoint.is_active:
            savepoint.rollback()
        raise
    if savepoint is not None:
        if outcomes[0].ok:
            savepoint.commit()
        else:
            savepoint.rollback()
            return outcomes
    plan.keep_orm_in_step()
    _tell_banks(session, plan, outcomes)
    if lookups is None:
        evaluate_breakers(session, settings, plan.lk, plan.breaker_actors)
    return outcomes


def _tell_banks(session: Session, plan: _Run, outcomes: list[Outcome]) -> None:
    """`loan.state_changed` for each accepted event that moved its loan to a state banks are told about
    (written in this transaction: the webhooks' outbox)."""
    changes = [
        (d.loan, d.snapshot, d.before["state"])
        for o in outcomes
        for d in o.done
        if d.before is not None and d.snapshot.state is not d.before["state"]
    ]
    if changes:
        webhook_events.loan_state_changed_events(session, changes, at=plan.now)


def evaluate_breakers(
    session: Session, settings: Settings, lk: Lookups, actors: dict[int, Actor] | None = None
) -> None:
    """After loan changes: re-evaluate the circuit breaker of every bank whose NPL ratio may have moved."""
    from loanfund.audit.service import SYSTEM
    from loanfund.fund import breakers

    for bank_id in sorted(lk.touched_banks):
        actor = (actors or {}).get(bank_id, SYSTEM)
        breakers.evaluate_bank(session, settings, actor, bank_id)
    lk.touched_banks.clear()


_DRAFT = tuple(LOANS.c[c] for c in DRAFT_COLUMNS)


class _Run:
    def __init__(self, session: Session, settings: Settings, lk: Lookups, views: bool) -> None:
        self.session = session
        self.settings = settings
        self.lk = lk
        self.views = views
        self.today = lk.today
        self.lr = rules.loan_rules(settings)
        self.now = utcnow()
        self.timestamps = {"created_at": self.now, "updated_at": self.now}
        self.by_id: dict[int, LoanDraft] = {}
        self.by_ref: dict[tuple[int, str], LoanDraft] = {}
        self.new_refs: dict[tuple[int, str], int] = {}  # → index of the contract that made it
        self.credit_code: dict[int, str] = {}  # id(draft) → credit code (with views)
        self.created_at: dict[int, datetime] = {}  # id(draft) → when the loan was registered (with views)
        self.used_event_refs: dict[tuple[int, str], tuple[int, int]] = {}  # → (event id, loan id)
        self.new_event_refs: dict[tuple[int, str], int] = {}  # → index of the item that posted it
        self.pending: dict[int, list[Event]] = {}  # id(draft) → events accepted in this run
        self.committed: dict[int, int] = {}  # bank → what counts against its quota, as of the item at hand
        self.written_events: set[int] = set()  # ids of the events written so far
        self.written_loans: dict[int, LoanDraft] = {}
        self.changes = portfolio.Changes()
        self.breaker_actors: dict[int, Actor] = {}
        self.alone: Submission | None = None  # the run's only submission

    # -- planning --

    def run(self, submissions: Sequence[Submission]) -> list[Outcome]:
        self.alone = submissions[0] if len(submissions) == 1 else None
        contracts = self._prefetch(submissions)
        bulk.reserve_ids(self.session, LOANS, contracts)
        bulk.reserve_ids(self.session, EVENTS, sum(len(s.items) for s in submissions) - contracts)
        outcomes: list[Outcome] = []
        ready: list[tuple[Submission, Done]] = []
        for sub in submissions:
            outcome = Outcome()
            outcomes.append(outcome)
            for index, item in enumerate(sub.items):
                try:
                    if isinstance(item, EventIn):
                        done = self._event(sub, index, item)
                    else:
                        done = self._contract(sub, index, item)
                except LoanfundError as exc:
                    outcome.errors.append((index, exc))
                    continue
                outcome.done.append(done)
                if not outcome.errors:
                    ready.append((sub, done))
                    if len(ready) >= _PART:
                        self._write(ready)
                        ready = []
            if outcome.errors:
                ready = [(s, d) for s, d in ready if s is not sub]
                outcome.done = []
        if len(submissions) == 1 and not outcomes[0].ok:
            return outcomes  # rolled back by the caller's savepoint
        self._write(ready)
        self.changes.write(self.session)  # the aggregates last: the rows concurrent writers share
        return outcomes

    def _prefetch(self, submissions: Sequence[Submission]) -> int:
        """Read what the items need, a few statements for all of them; the number of contracts."""
        s = self.session
        codes: set[str] = set()
        ids: set[int] = set()
        refs: dict[int, set[str]] = {}
        event_refs: dict[int, set[str]] = {}
        quota_banks: set[int] = set()
        contracts = 0
        for sub in submissions:
            bank_id, items = sub.bank_id, sub.items
            events = [i for i in items if type(i) is EventIn]
            if len(events) < len(items):
                bank_contracts: list[ContractIn] = [i for i in items if not isinstance(i, EventIn)]
                contracts += len(bank_contracts)
                codes.update(i.credit_code for i in bank_contracts)
                refs.setdefault(bank_id, set()).update(i.bank_loan_ref for i in bank_contracts)
                quota_banks.add(bank_id)
            if events:
                ids.update(i.loan for i in events if type(i.loan) is int)
                named = [i.loan for i in events if type(i.loan) is str]
                if named:
                    refs.setdefault(bank_id, set()).update(named)
                event_refs.setdefault(bank_id, set()).update(i.bank_event_ref for i in events)
        self.lk.prefetch_enterprises(codes)
        self._load_loans(ids, refs)
        self.used_event_refs = repository.events_by_refs(s, event_refs)
        for bank_id in sorted(quota_banks):
            if self.lk.bank(bank_id).lending_quota_fen is not None:
                self.committed[bank_id] = committed_fen(s, bank_id)
        self.lk.prefetch_closed(event_refs.keys())
        return contracts

    def _load_loans(self, ids: set[int], refs: dict[int, set[str]]) -> None:
        """The loans referred to, as drafts with their credit codes, locked in id order (so that two
        transactions locking overlapping sets cannot deadlock)."""
        s = self.session
        wanted = []
        if ids:
            wanted.append(bulk.one_of(s, LOANS, "id", sorted(ids)))
        for bank_id, bank_refs in sorted(refs.items()):
            wanted.append((LOANS.c.bank_id == bank_id) & bulk.one_of(s, LOANS, "bank_loan_ref", bank_refs))
        if not wanted:
            return
        if self.views:
            stmt = select(*_DRAFT, ENTERPRISES.c.credit_code, LOANS.c.created_at).join(
                ENTERPRISES, ENTERPRISES.c.id == LOANS.c.enterprise_id
            )
        else:
            stmt = select(*_DRAFT)
        stmt = stmt.where(or_(*wanted)).order_by(LOANS.c.id).with_for_update(of=LOANS)
        n = len(_DRAFT)
        # all rows fetched at once (iterating a result fetches them one by one); columns in field order
        for row in s.execute(stmt).all():
            draft = LoanDraft(*row[:n])
            assert draft.id is not None
            self.by_id[draft.id] = draft
            self.by_ref[(draft.bank_id, draft.bank_loan_ref)] = draft
            if self.views:
                self.credit_code[id(draft)] = row[n]
                self.created_at[id(draft)] = row[n + 1]

    def _contract(self, sub: Submission, index: int, item: ContractIn) -> Done:
        lk = self.lk
        bank = lk.bank(sub.bank_id)
        ent, amount_fen = check_contract(lk, bank, item)
        application = None
        if item.application_no is not None:
            application = application_service.get_approved_for_bank(
                self.session, bank.id, item.application_no
            )
            check_against_approval(application, ent, amount_fen, item)
        key = (bank.id, item.bank_loan_ref)
        if key in self.by_ref:
            taken = self.by_ref[key]
            raise ref_taken(
                item.bank_loan_ref,
                {"loan_id": taken.id} if key not in self.new_refs else {"index": self.new_refs[key]},
            )
        quota = bank.lending_quota_fen
        if quota is not None and self.committed[bank.id] + amount_fen > quota:
            raise Conflict("The contract would exceed the bank's lending quota", code="bank_quota_exceeded")
        # a contract is not yet covered principal: it must fit under the cap, and is counted when disbursed
        lk.coverage.admit(bank, amount_fen, item.start_date, counts=False)
        loan = LoanDraft(
            id=None,
            bank_id=bank.id,
            enterprise_id=ent.id,
            application_id=application.id if application is not None else None,
            bank_loan_ref=item.bank_loan_ref,
            industry=ent.industry,
            grade=(application.grade if application is not None else None) or "U",
            contract_amount_fen=amount_fen,
            annual_rate_pct=item.annual_rate_pct,
            start_date=item.start_date,
            maturity_date=item.maturity_date,
        )
        if application is not None:  # marking the application lent needs the loan's id now
            (loan.id,) = bulk.insert_rows(
                self.session, LOANS, [loan.row()], same=self.timestamps, return_ids=True
            )
            application_service.mark_lent(self.session, sub.actor, application, loan.id)
        if quota is not None:
            self.committed[bank.id] += _quota_part(loan)
        self.by_ref[key] = loan
        self.new_refs[key] = index
        self.credit_code[id(loan)] = item.credit_code
        self.created_at[id(loan)] = self.now
        return Done(
            loan,
            Snapshot(),
            item.credit_code,
            self.now,
            self.now,
            after=contract_audit(loan, item.credit_code),
        )

    def _event(self, sub: Submission, index: int, item: EventIn) -> Done:
        bank_id = sub.bank_id
        if isinstance(item.loan, int):
            loan = self.by_id.get(item.loan)
            if loan is None or loan.bank_id != bank_id:
                raise loan_not_found()
        else:
            found = self.by_ref.get((bank_id, item.loan))
            if found is None:
                raise loan_unknown(item.loan)
            loan = found
        event = item.event
        self._check_date(bank_id, event)
        key = (bank_id, item.bank_event_ref)
        if key in self.used_event_refs:
            event_id, loan_id = self.used_event_refs[key]
            raise event_ref_taken(item.bank_event_ref, {"event_id": event_id, "loan_id": loan_id})
        if key in self.new_event_refs:
            raise event_ref_taken(item.bank_event_ref, {"index": self.new_event_refs[key]})
        snap, deltas = plan_event(loan, event, self.lr, lambda: self._history(loan))
        if event.kind is EventKind.disbursement:
            self.lk.coverage.admit(self.lk.bank(bank_id), event.principal_fen, event.event_date)
        if portfolio.moves_npl_ratio(deltas):
            self.lk.touched_banks.add(bank_id)
            self.breaker_actors.setdefault(bank_id, sub.actor)
        before = loan_view(loan)
        if bank_id in self.committed:
            part = _quota_part(loan)
            loan.set_snapshot(snap)
            self.committed[bank_id] += _quota_part(loan) - part
        else:
            loan.set_snapshot(snap)
        self.pending.setdefault(id(loan), []).append(event)
        self.new_event_refs[key] = index
        self.changes.add(portfolio.key_of(loan), deltas)
        if event.kind is EventKind.disbursement:
            self.changes.borrowed(loan.enterprise_id, bank_id, event.event_date)
        if self.views:
            credit_code, created_at = self.credit_code[id(loan)], self.created_at[id(loan)]
        else:
            credit_code, created_at = "", self.now
        return Done(
            loan,
            snap,
            credit_code,
            created_at,
            self.now,
            event=event_row(event, item.bank_event_ref),
            before=before,
            after=loan_view(loan),
        )

    def _check_date(self, bank_id: int, event: Event) -> None:
        """Not in the future, and not in a month the bank's status report has closed."""
        if event.event_date > self.today:
            raise field_error("event_in_future", f"{event.event_date} is in the future", "date")
        closed = self.lk.closed.get(bank_id, _UNREAD)
        if closed is _UNREAD:
            self.lk.prefetch_closed([bank_id])
            closed = self.lk.closed[bank_id]
        if closed is not None and event.event_date <= closed:
            raise Conflict(
                f"The reporting month up to {closed} is closed by the bank's status report",
                code="reporting_month_closed",
                details=[{"field": "date", "message": f"must be after {closed}"}],
            )

    def _history(self, loan: LoanDraft) -> list[Event]:
        """The loan's events in posting order: those stored before this run, then those accepted in it."""
        stored = (
            []
            if loan.id is None
            else repository.stored_events(self.session, loan.id, excluding=self.written_events)
        )
        return stored + self.pending.get(id(loan), [])

    # -- applying --

    def _write(self, part: list[tuple[Submission, Done]]) -> None:
        """Hand over what `part` of the items did: new loans, changed loans, events, audit records."""
        if not part:
            return
        s = self.session
        new = [d.loan for _, d in part if d.event is None and d.loan.id is None]
        ids = bulk.insert_rows(s, LOANS, [n.row() for n in new], same=self.timestamps, return_ids=True)
        for loan, loan_id in zip(new, ids, strict=True):
            loan.id = loan_id
        for source, rows in self._event_rows(part):
            event_ids = bulk.insert_rows(
                s, EVENTS, rows, same={"source": source, "created_at": self.now}, return_ids=True
            )
            for row, event_id in zip(rows, event_ids, strict=True):
                row["id"] = event_id
                row["source"] = source
                self.written_events.add(event_id)
        inserted = {id(n) for n in new}  # written as they are now: nothing to update
        changed = {id(d.loan): d.loan for _, d in part if d.event is not None and id(d.loan) not in inserted}
        bulk.update_rows(s, LOANS, [loan.snapshot_row(updated_at=self.now) for loan in changed.values()])
        for _, d in part:
            assert d.loan.id is not None
            self.written_loans[d.loan.id] = d.loan
        self._audit(part)

    @staticmethod
    def _event_rows(part: list[tuple[Submission, Done]]) -> list[tuple[str, list[dict[str, Any]]]]:
        """The event rows of `part`, with their loan and bank, in order, by source (all from one, as a
        rule)."""
        groups: dict[str, list[dict[str, Any]]] = {}
        for sub, d in part:
            if d.event is not None:
                row = d.event
                row["loan_id"] = d.loan.id
                row["bank_id"] = sub.bank_id
                rows = groups.get(sub.source)
                if rows is None:
                    rows = groups[sub.source] = []
                rows.append(row)
        return list(groups.items())

    def _audit(self, part: list[tuple[Submission, Done]]) -> None:
        """One audit record per item, with its submission's actor and request id."""
        entries: list[Entry] = []
        for _, d in part:
            assert d.loan.id is not None
            if d.event is None:
                entries.append(Entry("loan.create", "loan", d.loan.id, after=d.after))
                continue
            kind: EventKind = d.event["kind"]
            after = {
                **(d.after or {}),
                "event_id": d.event["id"],
                "bank_event_ref": d.event["bank_event_ref"],
            }
            entries.append(Entry(f"loan.{kind.value}", "loan", d.loan.id, before=d.before, after=after))
        if self.alone is not None:
            record_many(self.session, self.alone.actor, entries, request_id=self.alone.request_id)
            return
        current = request_id_var.get()
        record_each(
            self.session,
            [
                Attributed(sub.actor, sub.request_id or current, e)
                for (sub, _), e in zip(part, entries, strict=True)
            ],
        )

    def keep_orm_in_step(self) -> None:
        """Loans the session holds as ORM objects take the values just written (without a query, and
        without marking them changed)."""
        written = self.written_loans
        for obj in list(self.session.identity_map.values()):
            if type(obj) is Loan and obj.id in written:
                draft = written[obj.id]
                for name in SNAPSHOT_COLUMNS:
                    set_committed_value(obj, name, getattr(draft, name))
                set_committed_value(obj, "updated_at", self.now)
