"""The loan lifecycle as pure functions: one event applied to a snapshot, and a replay of all events.

Posting in order and replaying a backdated set give the same result because both use `apply`, and the
replay order is (event date, posting order). The thresholds and classifications are the rulebook's
(`loanfund.rules`): days past due → standing, the non-performing date, the bound on days past due by the
loan's age, early defaults.

    approved ──disbursement──▶ active ◀──▶ overdue (1 … npl_days-1 dpd) ──▶ non_performing (≥ npl_days)
        │                        │  ▲                                            │
        │                        └──┴──────── cure (dpd back to 0) ◀─────────────┘
        └─ repayment to zero outstanding (from active / overdue / non_performing) ──▶ settled
    compensated / written_off are set by the fund (claims, recoveries), never by a bank event.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

from loanfund import rules
from loanfund.core.money import yuan_text
from loanfund.rules import LoanRules, Standing


class LoanState(enum.StrEnum):
    approved = "approved"
    active = "active"
    overdue = "overdue"
    non_performing = "non_performing"
    compensated = "compensated"
    written_off = "written_off"
    settled = "settled"


class EventKind(enum.StrEnum):
    disbursement = "disbursement"
    repayment = "repayment"
    delinquency = "delinquency"


PERFORMING = {LoanState.active, LoanState.overdue}
OPEN_FOR_BANK_EVENTS = {LoanState.approved, LoanState.active, LoanState.overdue, LoanState.non_performing}
# Which states each state may move to; anything else is refused.
TRANSITIONS: dict[LoanState, set[LoanState]] = {
    LoanState.approved: {LoanState.active},
    LoanState.active: {LoanState.overdue, LoanState.non_performing, LoanState.settled},
    LoanState.overdue: {LoanState.active, LoanState.non_performing, LoanState.settled},
    LoanState.non_performing: {
        LoanState.active,
        LoanState.overdue,
        LoanState.settled,
        LoanState.compensated,
    },
    LoanState.compensated: {LoanState.written_off},
    LoanState.written_off: set(),
    LoanState.settled: set(),
}


class LoanRuleError(Exception):
    """A bank event that breaks a loan rule; `code` is machine-readable, `field` names the input."""

    def __init__(self, code: str, message: str, field: str | None = None, conflict: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.conflict = conflict  # True: the loan's state refuses it (409); False: the input is wrong (422)


@dataclass(frozen=True)
class Contract:
    amount_fen: int
    start_date: date
    maturity_date: date


@dataclass(frozen=True)
class Event:
    kind: EventKind
    event_date: date
    principal_fen: int = 0
    interest_fen: int = 0
    days_past_due: int = 0


@dataclass(frozen=True)
class Snapshot:
    state: LoanState = LoanState.approved
    disbursed_fen: int = 0
    principal_repaid_fen: int = 0
    interest_repaid_fen: int = 0
    days_past_due: int = 0
    first_disbursed_on: date | None = None
    npl_since: date | None = None
    settled_on: date | None = None
    last_event_date: date | None = None
    early_default: bool = False  # became non-performing within the early-default window

    @property
    def outstanding_fen(self) -> int:
        return self.disbursed_fen - self.principal_repaid_fen


SNAPSHOT_FIELDS = tuple(f.name for f in fields(Snapshot))
_SNAPSHOT_FIELD_SET = frozenset(SNAPSHOT_FIELDS)


def snapshot_from(values: Iterable[Any]) -> Snapshot:
    """A `Snapshot` of the values of `SNAPSHOT_FIELDS`, in that order, without the frozen dataclass's
    `__init__` (one `object.__setattr__` per field; a batch makes thousands). A frozen `Snapshot` holds
    nothing but its fields, in its `__dict__`."""
    snap = object.__new__(Snapshot)
    snap.__dict__.update(zip(SNAPSHOT_FIELDS, values, strict=True))
    return snap


def _replace(snap: Snapshot, **changes: Any) -> Snapshot:
    """`dataclasses.replace(snap, **changes)` without its inspection of the fields on every call (a batch
    applies thousands of events)."""
    if not _SNAPSHOT_FIELD_SET.issuperset(changes):
        raise TypeError(f"Snapshot has no field {', '.join(sorted(changes.keys() - _SNAPSHOT_FIELD_SET))}")
    new = object.__new__(Snapshot)
    values = new.__dict__
    values.update(snap.__dict__)
    values.update(changes)
    return new


def check_transition(old: LoanState, new: LoanState) -> None:
    if old != new and new not in TRANSITIONS[old]:
        raise LoanRuleError(
            "loan_state_invalid", f"A loan cannot go from {old.value} to {new.value}", conflict=True
        )


_STATE_OF = {
    Standing.performing: LoanState.active,
    Standing.overdue: LoanState.overdue,
    Standing.non_performing: LoanState.non_performing,
}


def apply(snap: Snapshot, contract: Contract, event: Event, lr: LoanRules) -> Snapshot:
    if snap.state not in OPEN_FOR_BANK_EVENTS:
        raise LoanRuleError(
            "loan_state_invalid",
            f"The loan is {snap.state.value}; it takes no more bank events",
            conflict=True,
        )
    if event.kind is EventKind.disbursement:
        new = _disburse(snap, contract, event)
    elif event.kind is EventKind.repayment:
        new = _repay(snap, event)
    else:
        new = _delinquency(snap, event, lr)
    check_transition(snap.state, new.state)
    last = event.event_date if snap.last_event_date is None else max(snap.last_event_date, event.event_date)
    return _replace(new, last_event_date=last)


def _disburse(snap: Snapshot, contract: Contract, event: Event) -> Snapshot:
    if event.principal_fen <= 0:
        raise LoanRuleError("amount_not_positive", "A disbursement must be positive", "amount")
    if event.event_date < contract.start_date:
        raise LoanRuleError(
            "disbursement_before_contract",
            f"Disbursement on {event.event_date} is before the contract starts ({contract.start_date})",
            "date",
        )
    if event.event_date > contract.maturity_date:
        raise LoanRuleError(
            "disbursement_after_maturity",
            f"Disbursement on {event.event_date} is after maturity ({contract.maturity_date})",
            "date",
        )
    if snap.state not in (LoanState.approved, LoanState.active):
        raise LoanRuleError(
            "loan_state_invalid", f"No disbursement on a loan that is {snap.state.value}", conflict=True
        )
    if snap.disbursed_fen + event.principal_fen > contract.amount_fen:
        raise LoanRuleError(
            "disbursement_exceeds_contract",
            "Total disbursements would exceed the contract amount",
            "amount",
            conflict=True,
        )
    return _replace(
        snap,
        state=LoanState.active,
        disbursed_fen=snap.disbursed_fen + event.principal_fen,
        first_disbursed_on=snap.first_disbursed_on or event.event_date,
    )


def _repay(snap: Snapshot, event: Event) -> Snapshot:
    if event.principal_fen < 0 or event.interest_fen < 0:
        raise LoanRuleError(
            "amount_negative", "Repaid principal and interest cannot be negative", "principal"
        )
    if event.principal_fen + event.interest_fen == 0:
        raise LoanRuleError(
            "amount_not_positive", "A repayment must repay principal or interest", "principal"
        )
    if snap.first_disbursed_on is None or event.event_date < snap.first_disbursed_on:
        raise LoanRuleError(
            "repayment_before_disbursement", "A repayment cannot precede the first disbursement", "date", True
        )
    if event.principal_fen > snap.outstanding_fen:
        raise LoanRuleError(
            "repayment_exceeds_outstanding",
            f"Principal {yuan_text(event.principal_fen)} exceeds the outstanding "
            f"{yuan_text(snap.outstanding_fen)}",
            "principal",
            conflict=True,
        )
    new = _replace(
        snap,
        principal_repaid_fen=snap.principal_repaid_fen + event.principal_fen,
        interest_repaid_fen=snap.interest_repaid_fen + event.interest_fen,
    )
    if new.outstanding_fen == 0 and event.principal_fen > 0:
        new = _replace(new, state=LoanState.settled, settled_on=event.event_date, days_past_due=0)
    return new


def _delinquency(snap: Snapshot, event: Event, lr: LoanRules) -> Snapshot:
    dpd = event.days_past_due
    if dpd < 0:
        raise LoanRuleError("days_past_due_negative", "Days past due cannot be negative", "days_past_due")
    if snap.state is LoanState.approved or snap.first_disbursed_on is None:
        raise LoanRuleError(
            "loan_not_disbursed", "Delinquency cannot be reported before disbursement", conflict=True
        )
    oldest = rules.max_days_past_due(snap.first_disbursed_on, event.event_date)
    if dpd > oldest:
        raise LoanRuleError(
            "days_past_due_exceeds_loan_age",
            f"{dpd} days past due on {event.event_date} is more than the loan's age: it was first "
            f"disbursed on {snap.first_disbursed_on}, {oldest} days before",
            "days_past_due",
        )
    state = _STATE_OF[rules.standing(dpd, lr.npl_days)]
    npl_since = snap.npl_since
    early = snap.early_default
    if state is LoanState.non_performing and snap.state is not LoanState.non_performing:
        # the day the loan crossed the line, as implied by the reported days past due
        npl_since = rules.npl_since(event.event_date, dpd, lr.npl_days)
        early = early or rules.is_early_default(snap.first_disbursed_on, npl_since, lr)
    elif state is not LoanState.non_performing:
        npl_since = None
    return _replace(snap, state=state, days_past_due=dpd, npl_since=npl_since, early_default=early)


def replay(contract: Contract, events: list[Event], lr: LoanRules) -> Snapshot:
    """Apply events in (date, posting order); `events` must already be in posting order."""
    snap = Snapshot()
    for e in sorted(enumerate(events), key=lambda p: (p[1].event_date, p[0])):
        snap = apply(snap, contract, e[1], lr)
    return snap
