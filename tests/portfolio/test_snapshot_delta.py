"""`snapshot_delta` is written out for speed; it must equal its definition: the change of the loan's part
in each stock (`contribution` after less before), plus the event's flows, zero figures left out."""

from __future__ import annotations

import itertools
from datetime import date

import pytest

from loanfund.loans.state import Event, EventKind, LoanState, Snapshot
from loanfund.portfolio.service import contribution, snapshot_delta

DAY = date(2025, 1, 1)
EVENTS = [
    None,
    Event(EventKind.disbursement, DAY, principal_fen=40),
    Event(EventKind.repayment, DAY, principal_fen=40, interest_fen=3),
    Event(EventKind.repayment, DAY, interest_fen=3),
    Event(EventKind.delinquency, DAY, days_past_due=5),
]


def _by_definition(before: Snapshot, after: Snapshot, event: Event | None) -> dict[str, int]:
    b = contribution(before.state, before.outstanding_fen)
    a = contribution(after.state, after.outstanding_fen)
    figures = {k: a[k] - b[k] for k in a}
    if event is not None and event.kind is EventKind.disbursement:
        figures["disbursed_fen"] = event.principal_fen
    if event is not None and event.kind is EventKind.repayment:
        figures["principal_repaid_fen"] = event.principal_fen
        figures["interest_repaid_fen"] = event.interest_fen
    if before.first_disbursed_on is None and after.first_disbursed_on is not None:
        figures["loans_started"] = 1
    return {k: v for k, v in figures.items() if v}


@pytest.mark.parametrize(("old", "new"), list(itertools.product(LoanState, LoanState)))
def test_snapshot_delta_is_the_change_of_contributions(old: LoanState, new: LoanState) -> None:
    for (b, a), event, (was, now) in itertools.product(
        [(0, 0), (100, 100), (100, 0), (0, 100), (100, 60)], EVENTS, [(None, None), (None, DAY), (DAY, DAY)]
    ):
        before = Snapshot(state=old, disbursed_fen=b, first_disbursed_on=was)
        after = Snapshot(state=new, disbursed_fen=a, first_disbursed_on=now)
        assert snapshot_delta(DAY, before, after, event).figures == _by_definition(before, after, event)
