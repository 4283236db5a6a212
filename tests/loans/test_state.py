"""Backdated events give the same state as events posted in order (a property of `apply` and `replay`)."""

import dataclasses
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loanfund.loans.state import (
    Contract,
    Event,
    EventKind,
    LoanRuleError,
    LoanState,
    Snapshot,
    _replace,
    apply,
    replay,
)
from loanfund.rules import LoanRules

CONTRACT = Contract(amount_fen=1_000_000, start_date=date(2021, 3, 1), maturity_date=date(2022, 2, 28))
LR = LoanRules(npl_days=90, early_default_months=6)

events = st.lists(
    st.one_of(
        st.builds(
            Event,
            st.just(EventKind.disbursement),
            st.integers(0, 60).map(lambda d: date(2021, 3, 1) + timedelta(days=d)),
            st.integers(1, 400_000),
        ),
        st.builds(
            Event,
            st.just(EventKind.repayment),
            st.integers(0, 120).map(lambda d: date(2021, 3, 1) + timedelta(days=d)),
            st.integers(0, 300_000),
            st.integers(0, 5_000),
        ),
        st.builds(
            Event,
            st.just(EventKind.delinquency),
            st.integers(0, 200).map(lambda d: date(2021, 3, 1) + timedelta(days=d)),
            days_past_due=st.integers(0, 150),
        ),
    ),
    max_size=12,
)


def _accepted(evs: list[Event]) -> list[Event]:
    """Keep the events a bank could post in date order (the rest would be refused)."""
    snap, kept = Snapshot(), []
    for e in sorted(evs, key=lambda e: e.event_date):
        try:
            snap = apply(snap, CONTRACT, e, LR)
            kept.append(e)
        except LoanRuleError:
            pass
    return kept


def _post_like_the_service(posting: list[Event]) -> tuple[Snapshot, list[Event]]:
    """What `loans.service.post_event` does: apply in-order events, replay history for backdated ones."""
    snap, accepted = Snapshot(), []
    for e in posting:
        try:
            if snap.last_event_date is None or e.event_date >= snap.last_event_date:
                new = apply(snap, CONTRACT, e, LR)
            else:
                new = replay(CONTRACT, [*accepted, e], LR)
        except LoanRuleError:
            continue
        snap = new
        accepted.append(e)
    return snap, accepted


@settings(max_examples=300, deadline=None)
@given(events, st.randoms(use_true_random=False))
def test_backdated_posting_equals_posting_in_date_order(evs: list[Event], rnd: object) -> None:
    kept = _accepted(evs)
    posting = list(kept)
    rnd.shuffle(posting)  # type: ignore[attr-defined]
    incremental, accepted = _post_like_the_service(posting)
    # the same accepted events, posted in date order (same-day events in the order they were posted)
    in_date_order = sorted(accepted, key=lambda e: e.event_date)
    assert incremental == replay(CONTRACT, in_date_order, LR)
    assert _post_like_the_service(in_date_order)[0] == incremental
    assert incremental.outstanding_fen == sum(
        e.principal_fen if e.kind is EventKind.disbursement else -e.principal_fen
        for e in accepted
        if e.kind is not EventKind.delinquency
    )
    assert 0 <= incremental.outstanding_fen <= CONTRACT.amount_fen


def test_npl_since_is_when_the_line_was_crossed() -> None:
    snap = apply(Snapshot(), CONTRACT, Event(EventKind.disbursement, date(2021, 3, 1), 10), LR)
    snap = apply(snap, CONTRACT, Event(EventKind.delinquency, date(2021, 9, 30), days_past_due=100), LR)
    assert snap.state is LoanState.non_performing
    assert snap.npl_since == date(2021, 9, 20)


def test_fund_states_take_no_bank_events() -> None:
    snap = Snapshot(state=LoanState.compensated, disbursed_fen=10, first_disbursed_on=date(2021, 3, 1))
    with pytest.raises(LoanRuleError) as exc:
        apply(snap, CONTRACT, Event(EventKind.repayment, date(2021, 5, 1), 1), LR)
    assert exc.value.conflict


def test_snapshot_replace_is_dataclasses_replace() -> None:
    snap = Snapshot(disbursed_fen=5, first_disbursed_on=date(2021, 3, 1))
    changes: dict[str, Any] = {"state": LoanState.active, "disbursed_fen": 7, "npl_since": None}
    assert _replace(snap, **changes) == dataclasses.replace(snap, **changes)
    assert snap.disbursed_fen == 5
    with pytest.raises(TypeError, match="no field nope"):
        _replace(snap, nope=1)
