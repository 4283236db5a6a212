"""Single requests and batches are one write path: the same events, posted one request at a time or as
batch items, are accepted or refused alike (with the same codes) and leave the loan the same."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from loanfund.core.config import Settings
from tests.factories import (
    Caller,
    assert_loans_replay_and_aggregates_rebuild,
    make_enterprise,
    register_loan,
)

pytestmark = pytest.mark.usefixtures("funded", "lenient_breakers")
URL = "/api/v1/loans"
_runs = itertools.count(1)

# an event: kind, days after the contract's start, and its figure (yuan or days past due)
events = st.lists(
    st.tuples(
        st.sampled_from(["disbursement", "repayment", "delinquency"]),
        st.integers(-5, 200),
        st.integers(0, 150),
    ),
    min_size=1,
    max_size=8,
)

_STABLE = ("state", "disbursed", "principal_repaid", "interest_repaid", "outstanding_principal")
_STABLE += ("days_past_due", "first_disbursed_on", "npl_since", "settled_on", "early_default")


def _body(kind: str, start: date, offset: int, figure: int, ref: str) -> dict[str, Any]:
    day = (start + timedelta(days=offset)).isoformat()
    if kind == "disbursement":
        return {"bank_event_ref": ref, "date": day, "amount": str(figure * 1000)}
    if kind == "repayment":
        return {"bank_event_ref": ref, "date": day, "principal": str(figure * 500), "interest": "1.50"}
    return {"bank_event_ref": ref, "date": day, "days_past_due": figure}


@hypothesis_settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(evs=events)
def test_single_requests_and_batch_items_meet_the_same_rules(
    client: TestClient,
    bank_a: Caller,
    session: Session,
    settings: Settings,
    today: date,
    evs: list[tuple[str, int, int]],
) -> None:
    run = next(_runs)
    code = make_enterprise(session).credit_code
    start = today - timedelta(days=190)
    single = register_loan(client, bank_a, code, f"ONE-S-{run}", start)
    batched = register_loan(client, bank_a, code, f"ONE-B-{run}", start)
    whole = f"ONE-W-{run}"
    register_loan(client, bank_a, code, whole, start)
    outcomes: list[tuple[bool, str | None]] = []
    for n, (kind, offset, figure) in enumerate(evs):
        ref = f"{run}-{n}"
        one = client.post(
            f"{URL}/{single}/{kind if kind == 'delinquency' else kind + 's'}",
            json=_body(kind, start, offset, figure, f"S{ref}"),
            headers=bank_a.headers,
        )
        item = {
            "type": kind,
            "bank_loan_ref": f"ONE-B-{run}",
            **_body(kind, start, offset, figure, f"B{ref}"),
        }
        batch = client.post(f"{URL}/batch", json={"items": [item]}, headers=bank_a.headers)
        assert one.status_code < 500
        assert (one.status_code == 201) == (batch.status_code == 200), (one.text, batch.text)
        if one.status_code != 201:
            (refusal,) = batch.json()["error"]["details"]
            assert refusal["code"] == one.json()["error"]["code"]
            outcomes.append((False, refusal["code"]))
        else:
            outcomes.append((True, None))
    a = client.get(f"{URL}/{single}", headers=bank_a.headers).json()
    b = client.get(f"{URL}/{batched}", headers=bank_a.headers).json()
    assert {k: a[k] for k in _STABLE} == {k: b[k] for k in _STABLE}
    # the same events as one batch: all or nothing, and all only if each was accepted on its own
    items = [
        {"type": kind, "bank_loan_ref": whole, **_body(kind, start, offset, figure, f"W{run}-{n}")}
        for n, (kind, offset, figure) in enumerate(evs)
    ]
    r = client.post(f"{URL}/batch", json={"items": items}, headers=bank_a.headers)
    assert (r.status_code == 200) == all(ok for ok, _ in outcomes)
    if r.status_code == 200:
        w = client.get(f"{URL}/by-ref/{whole}", headers=bank_a.headers).json()
        assert {k: w[k] for k in _STABLE} == {k: a[k] for k in _STABLE}
    else:
        first_refused = next(i for i, (ok, _) in enumerate(outcomes) if not ok)
        assert r.json()["error"]["details"][0]["index"] == first_refused
    assert_loans_replay_and_aggregates_rebuild(session, settings)
