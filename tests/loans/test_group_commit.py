"""Single repayments and delinquency reports written as a group (`loans.group_commit`): each request keeps its
own answer, audit record and idempotency record; anything but the plain case is left to the ordinary
path untouched; what a group writes keeps loans equal to a replay of their events and the aggregates
equal to a rebuild."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from loanfund.audit.service import Actor
from loanfund.core.config import Settings
from loanfund.core.idempotency import IdempotencyRecord, request_fingerprint
from loanfund.loans import group_commit
from loanfund.loans.models import LoanEvent
from loanfund.loans.schemas import DelinquencyCreate, RepaymentCreate
from loanfund.loans.state import Event, EventKind
from tests.factories import (
    Caller,
    assert_loans_replay_and_aggregates_rebuild,
    contract_payload,
    make_enterprise,
)

pytestmark = pytest.mark.usefixtures("funded")


def _loans(client: TestClient, caller: Caller, code: str, refs: list[str]) -> dict[str, int]:
    items: list[dict[str, Any]] = []
    for ref in refs:
        items.append({"type": "contract", **contract_payload(code, ref, amount="100000")})
        items.append(
            {
                "type": "disbursement",
                "bank_loan_ref": ref,
                "bank_event_ref": f"{ref}-d",
                "date": "2021-03-02",
                "amount": "100000",
            }
        )
    r = client.post("/api/v1/loans/batch", json={"items": items}, headers=caller.headers)
    assert r.status_code == 200, r.text
    return dict(zip(refs, r.json()["loan_ids"][::2], strict=True))


def _repayment(
    bank: Caller,
    loan_id: int,
    ref: str,
    day: date,
    *,
    key: str | None,
    principal: str = "0",
    interest: str = "0",
) -> group_commit.SingleEvent:
    body = RepaymentCreate(
        bank_event_ref=ref, date=day, principal=Decimal(principal), interest=Decimal(interest)
    )
    event = Event(
        EventKind.repayment,
        day,
        principal_fen=int(Decimal(principal) * 100),
        interest_fen=int(Decimal(interest) * 100),
    )
    path = f"/api/v1/loans/{loan_id}/repayments"
    return group_commit.SingleEvent(
        bank.id,
        Actor("bank", bank.id, f"bank:{bank.name}"),
        f"req-{ref}-{key}",
        loan_id,
        event,
        ref,
        key,
        request_fingerprint("POST", path, body) if key else None,
    )


def test_a_group_writes_each_request_as_its_own(
    client: TestClient, bank_a: Caller, bank_b: Caller, session: Session, settings: Settings, today: date
) -> None:
    code = make_enterprise(session).credit_code
    a = _loans(client, bank_a, code, ["G-0", "G-1", "G-2"])
    b = _loans(client, bank_b, code, ["H-0"])
    # a key already used by an earlier request of bank A
    used = client.post(
        f"/api/v1/loans/{a['G-2']}/repayments",
        json={"bank_event_ref": "G-2-early", "date": "2021-03-10", "interest": "1"},
        headers={**bank_a.headers, "Idempotency-Key": "used"},
    )
    assert used.status_code == 201
    delinquency = DelinquencyCreate(bank_event_ref="G-1-q", date=date(2021, 6, 1), days_past_due=10)
    items = [
        _repayment(bank_a, a["G-0"], "G-0-1", date(2021, 4, 1), key="g-0", interest="100"),
        _repayment(bank_a, a["G-0"], "G-0-2", date(2021, 5, 1), key="g-1", principal="10000", interest="50"),
        group_commit.SingleEvent(
            bank_a.id,
            Actor("bank", bank_a.id, f"bank:{bank_a.name}"),
            "req-G-1-q",
            a["G-1"],
            Event(EventKind.delinquency, delinquency.date, days_past_due=10),
            "G-1-q",
        ),
        # a backdated event: the loan's history is replayed, in the group as on the ordinary path
        _repayment(bank_a, a["G-0"], "G-0-back", date(2021, 3, 15), key="k3", interest="1"),
        # refused, or not the plain case: each is left to the ordinary path
        _repayment(bank_a, b["H-0"], "H-0-x", date(2021, 4, 1), key="k4", interest="1"),  # another bank's
        _repayment(bank_a, a["G-2"], "G-0-1", date(2021, 4, 1), key="k5", interest="1"),  # ref used above
        _repayment(bank_a, a["G-2"], "G-2-k", date(2021, 4, 2), key="g-0", interest="1"),  # key used above
        _repayment(bank_a, a["G-2"], "G-2-f", today + timedelta(days=1), key="k7", interest="1"),  # future
        _repayment(bank_a, a["G-2"], "G-2-u", date(2021, 4, 3), key="used", interest="1"),  # stored key
        _repayment(bank_a, 10**9, "G-x", date(2021, 4, 1), key="k9", interest="1"),  # no such loan
        _repayment(bank_a, a["G-2"], "G-2-d", date(2021, 4, 4), key="k10", interest="1"),  # stored ref
        # plain again, after all the others
        _repayment(bank_a, a["G-2"], "G-2-1", date(2021, 7, 1), key="g-11", interest="7"),
        _repayment(bank_b, b["H-0"], "H-0-1", date(2021, 4, 1), key="g-0", interest="3"),  # B's own "g-0"
    ]
    results = group_commit.post_many(settings, session, items)

    accepted = {0, 1, 2, 3, 11, 12}
    assert {i for i, r in enumerate(results) if r is not None} == accepted
    declined_refs = {"H-0-x", "G-2-k", "G-2-f", "G-2-u", "G-x"}
    stored_refs = set(session.scalars(select(LoanEvent.bank_event_ref)))
    assert not declined_refs & stored_refs
    assert {"G-0-1", "G-0-2", "G-1-q", "G-0-back", "G-2-1", "H-0-1"} <= stored_refs

    bodies = {i: json.loads(results[i] or "") for i in accepted}
    # each answer shows the loan after its own event, not after the group
    assert (bodies[0]["loan"]["interest_repaid"], bodies[0]["loan"]["principal_repaid"]) == ("100.00", "0.00")
    assert (bodies[1]["loan"]["interest_repaid"], bodies[1]["loan"]["principal_repaid"]) == (
        "150.00",
        "10000.00",
    )
    assert bodies[1]["loan"]["outstanding_principal"] == "90000.00"
    assert bodies[3]["loan"]["interest_repaid"] == "151.00"  # the replay: every event up to then
    assert (bodies[2]["loan"]["state"], bodies[2]["event"]["days_past_due"]) == ("overdue", 10)
    events = {e.bank_event_ref: e for e in session.scalars(select(LoanEvent))}
    for i in accepted:
        event = events[items[i].bank_event_ref]
        assert bodies[i]["event"]["id"] == event.id
        assert (event.source, bodies[i]["event"]["source"]) == ("api", "api")
        assert event.bank_id == items[i].bank_id

    records = {
        (r.bank_id, r.key): r
        for r in session.scalars(select(IdempotencyRecord).where(IdempotencyRecord.key != "used"))
    }
    assert set(records) == {
        (bank_a.id, "g-0"),
        (bank_a.id, "g-1"),
        (bank_a.id, "k3"),
        (bank_a.id, "g-11"),
        (bank_b.id, "g-0"),
    }
    for i in (0, 1, 3, 11, 12):
        stored = records[(items[i].bank_id, items[i].key or "")]
        assert (stored.response_status, stored.response_body) == (201, results[i])

    audit = {
        r.request_id: r for r in session.scalars(select(AuditRecord).where(AuditRecord.entity_type == "loan"))
    }
    for i in accepted:
        record = audit[items[i].request_id]
        assert (record.actor_kind, record.actor_id) == ("bank", items[i].bank_id)
        assert record.action == f"loan.{items[i].event.kind.value}"
        assert record.after is not None
        assert record.after["event_id"] == bodies[i]["event"]["id"]
    assert not {items[i].request_id for i in range(len(items)) if i not in accepted} & set(audit)
    assert_loans_replay_and_aggregates_rebuild(session, settings)

    # a retry of a grouped request replays its answer byte for byte
    retry = client.post(
        f"/api/v1/loans/{a['G-0']}/repayments",
        json={"bank_event_ref": "G-0-1", "date": "2021-04-01", "interest": "100"},
        headers={**bank_a.headers, "Idempotency-Key": "g-0"},
    )
    assert (retry.status_code, retry.headers["idempotent-replayed"]) == (201, "true")
    assert retry.text == results[0]


def test_single_requests_take_the_group_path_and_keep_their_request_id(
    app: FastAPI, client: TestClient, bank_a: Caller, session: Session, settings: Settings
) -> None:
    code = make_enterprise(session).credit_code
    loan_id = _loans(client, bank_a, code, ["S-0"])["S-0"]
    group = app.state.single_events
    before = group.items
    r = client.post(
        f"/api/v1/loans/{loan_id}/repayments",
        json={"bank_event_ref": "S-0-1", "date": "2021-04-01", "principal": "1000", "interest": "12.5"},
        headers={**bank_a.headers, "X-Request-ID": "grouped-req-1"},
    )
    assert r.status_code == 201, r.text
    assert group.items == before + 1
    shown = client.get(f"/api/v1/loans/{loan_id}", headers=bank_a.headers).json()
    assert {k: v for k, v in r.json()["loan"].items()} == {k: v for k, v in shown.items() if k != "events"}
    record = session.scalars(select(AuditRecord).where(AuditRecord.request_id == "grouped-req-1")).one()
    assert (record.action, record.actor_id) == ("loan.repayment", bank_a.id)
    # a refusal still comes from the ordinary path, with its code
    again = client.post(
        f"/api/v1/loans/{loan_id}/repayments",
        json={"bank_event_ref": "S-0-1", "date": "2021-04-02", "interest": "1"},
        headers=bank_a.headers,
    )
    assert (again.status_code, again.json()["error"]["code"]) == (409, "bank_event_ref_taken")
    assert group.items == before + 1
    assert_loans_replay_and_aggregates_rebuild(session, settings)
