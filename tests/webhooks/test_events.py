"""The outbox: events are written in the transaction of the change (and only if it commits), for the
endpoints that take them, each carrying the resource's API representation."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loanfund.core.config import Settings
from loanfund.core.errors import Conflict
from loanfund.fund import breakers
from loanfund.webhooks import events as webhook_events
from loanfund.webhooks import outbox
from loanfund.webhooks.models import WebhookDelivery, WebhookEvent
from tests.conftest import NplLoan
from tests.factories import STRONG_INDICATORS, WEAK_INDICATORS, Caller, application_payload, make_enterprise
from tests.webhooks.conftest import Drain, EndpointMaker
from tests.webhooks.receiver import Receiver


def _events(session: Session, event_type: str | None = None) -> list[dict[str, Any]]:
    session.expire_all()
    stmt = select(WebhookEvent.payload).order_by(WebhookEvent.id)
    if event_type is not None:
        stmt = stmt.where(WebhookEvent.type == event_type)
    return [json.loads(p) for p in session.scalars(stmt)]


def _count(session: Session, model: type[Any]) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _claim(client: TestClient, bank: Caller, loan_id: int, amount: str) -> int:
    r = client.post(
        "/api/v1/claims", json={"loan_id": loan_id, "principal_at_default": amount}, headers=bank.headers
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


@pytest.mark.usefixtures("fund_10m", "lenient_breakers")
def test_a_rolled_back_change_emits_nothing(
    client: TestClient,
    session: Session,
    bank_a: Caller,
    officer: Caller,
    approver: Caller,
    npl_loan: NplLoan,
    endpoint: EndpointMaker,
    receiver: Receiver,
    drain: Drain,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loan = npl_loan(bank_a, "100000")
    endpoint(bank_a, event_types=["claim.paid", "loan.state_changed"])
    claim_id = _claim(client, bank_a, loan["id"], "100000")
    assert (
        client.post(f"/api/v1/claims/{claim_id}/approve", json={}, headers=officer.headers).status_code == 200
    )
    assert _count(session, WebhookEvent) == 0  # claim.approved is not among the endpoint's types

    # the payout fails after its events were emitted: the request's transaction is rolled back
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise Conflict("the programme check failed", code="injected_failure")

    monkeypatch.setattr(breakers, "evaluate_programme", refuse)
    r = client.post(f"/api/v1/claims/{claim_id}/pay", headers=approver.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "injected_failure")
    assert (_count(session, WebhookEvent), _count(session, WebhookDelivery)) == (0, 0)
    assert drain() == 0
    assert receiver.received == []

    # the same payout committed: its events are there, and delivered
    monkeypatch.undo()
    assert client.post(f"/api/v1/claims/{claim_id}/pay", headers=approver.headers).status_code == 200
    assert [e["type"] for e in _events(session)] == ["claim.paid", "loan.state_changed"]
    assert drain() == 2
    assert sorted(m.type for m in receiver.wait_for(2)) == ["claim.paid", "loan.state_changed"]


def test_nothing_is_written_when_no_endpoint_takes_the_event(
    session: Session, bank_a: Caller, bank_b: Caller, endpoint: EndpointMaker
) -> None:
    data = {"answer": 42}
    assert outbox.emit(session, bank_a.id, outbox.EventType.claim_paid, data) == 0
    endpoint(bank_b, event_types=["claim.rejected"])
    assert outbox.emit(session, bank_a.id, outbox.EventType.claim_paid, data) == 0  # another bank's
    assert outbox.emit(session, bank_b.id, outbox.EventType.claim_paid, data) == 0  # another type
    assert _count(session, WebhookEvent) == 0
    assert outbox.emit(session, bank_b.id, outbox.EventType.claim_rejected, data) == 1
    [event] = _events(session)
    assert (event["type"], event["data"]) == ("claim.rejected", data)
    assert event["id"].startswith("msg_")
    assert event["occurred_at"].endswith("Z")


def test_application_routed_on_submission_and_on_an_override(
    client: TestClient,
    session: Session,
    bank_a: Caller,
    officer: Caller,
    endpoint: EndpointMaker,
) -> None:
    endpoint(bank_a, event_types=["application.routed"])
    code = make_enterprise(session).credit_code
    r = client.post("/api/v1/applications", json=application_payload(code, bank_a.name))
    assert r.status_code == 201, r.text
    number = r.json()["application_no"]
    weak = application_payload(code, bank_a.name, indicators=WEAK_INDICATORS)
    ineligible = client.post("/api/v1/applications", json=weak).json()["application_no"]
    [routed] = _events(session, "application.routed")
    assert routed["data"] == client.get(f"/api/v1/bank/applications/{number}", headers=bank_a.headers).json()
    assert routed["data"]["status"] == "pending_bank"
    # an officer's override makes the ineligible one eligible: it reaches the bank then
    r = client.post(
        f"/api/v1/applications/{ineligible}/override",
        json={"grade": "C", "reason": "patents pending registration"},
        headers=officer.headers,
    )
    assert r.status_code == 200, r.text
    numbers = [e["data"]["application_no"] for e in _events(session, "application.routed")]
    assert numbers == [number, ineligible]
    assert STRONG_INDICATORS["invention_patents"] == routed["data"]["indicators"]["invention_patents"]


@pytest.mark.usefixtures("funded")
def test_breaker_changed_when_a_bank_trips_and_is_lifted(
    client: TestClient,
    session: Session,
    bank_a: Caller,
    bank_b: Caller,
    officer: Caller,
    npl_loan: NplLoan,
    endpoint: EndpointMaker,
) -> None:
    endpoint(bank_a, event_types=["breaker.changed"])
    endpoint(bank_b, event_types=["breaker.changed"], url="http://127.0.0.1:9/b")
    npl_loan(bank_a, "100000")  # bank A's only loan goes non-performing: its NPL ratio is 100 %
    [tripped] = _events(session)
    assert tripped["data"]["bank_id"] == bank_a.id
    assert (tripped["data"]["previous_state"], tripped["data"]["state"]) == ("normal", "suspended")
    r = client.post(
        f"/api/v1/fund/breakers/{bank_a.id}/lift",
        json={"reason": "bank's plan accepted"},
        headers=officer.headers,
    )
    assert r.status_code == 200, r.text
    lifted = _events(session)[-1]["data"]
    assert (lifted["previous_state"], lifted["state"], lifted["reason"]) == (
        "suspended",
        "warning",
        "bank's plan accepted",
    )
    assert lifted == {
        **client.get("/api/v1/fund/breakers", headers=bank_a.headers).json()["breakers"][0],
        "previous_state": "suspended",
    }
    # bank B's endpoint got none of it
    assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 2


def test_the_programme_breaker_goes_to_every_bank(
    session: Session, settings: Settings, bank_a: Caller, bank_b: Caller, endpoint: EndpointMaker
) -> None:
    endpoint(bank_a)
    endpoint(bank_b, url="http://127.0.0.1:9/b")
    row = breakers.Breaker(scope=breakers.PROGRAMME, bank_id=None, state=breakers.BreakerState.stopped)
    session.add(row)  # new, as `evaluate_programme` makes it the first time: not flushed yet
    assert webhook_events.breaker_changed(session, row, breakers.BreakerState.normal) == 2
    [event] = _events(session)
    assert (event["data"]["scope"], event["data"]["bank_id"], event["data"]["state"]) == (
        "programme",
        None,
        "stopped",
    )


@pytest.mark.usefixtures("funded")
def test_status_report_processed_with_its_discrepancy_counts(
    client: TestClient, session: Session, bank_a: Caller, endpoint: EndpointMaker
) -> None:
    endpoint(bank_a, event_types=["status_report.processed"])
    code = make_enterprise(session).credit_code
    loan = {
        "bank_loan_ref": "SR-1",
        "credit_code": code,
        "amount": "200000",
        "annual_rate_pct": "4.35",
        "start_date": "2021-03-01",
        "maturity_date": "2022-02-28",
    }
    assert client.post("/api/v1/loans", json=loan, headers=bank_a.headers).status_code == 201
    body = {
        "month_end": "2021-06-30",
        "loans": [
            {"bank_loan_ref": "SR-1", "outstanding_principal": "5.00", "days_past_due": 0},
            {"bank_loan_ref": "GHOST-1", "outstanding_principal": "1.00", "days_past_due": 0},
            {"bank_loan_ref": "GHOST-2", "outstanding_principal": "1.00", "days_past_due": 0},
        ],
    }
    r = client.post("/api/v1/status-reports", json=body, headers=bank_a.headers)
    assert r.status_code == 201, r.text
    report = r.json()
    [event] = _events(session)
    assert event["type"] == "status_report.processed"
    counts = event["data"].pop("discrepancy_counts")
    assert counts == {"balance_mismatch": 1, "not_open": 1, "unknown_loan": 2}
    assert sum(counts.values()) == report["discrepancy_count"] == 4
    report.pop("discrepancies")
    assert event["data"] == report


@pytest.mark.usefixtures("fund_10m", "lenient_breakers")
def test_claim_rejected_and_the_loan_written_off(
    client: TestClient,
    session: Session,
    bank_a: Caller,
    officer: Caller,
    approver: Caller,
    npl_loan: NplLoan,
    endpoint: EndpointMaker,
) -> None:
    loan = npl_loan(bank_a, "100000")
    endpoint(bank_a, event_types=["claim.rejected", "loan.state_changed"])
    first = _claim(client, bank_a, loan["id"], "100000")
    r = client.post(
        f"/api/v1/claims/{first}/reject", json={"reason": "no default notice"}, headers=officer.headers
    )
    assert r.status_code == 200
    [rejected] = _events(session)
    assert (rejected["type"], rejected["data"]["state"], rejected["data"]["rejection_reason"]) == (
        "claim.rejected",
        "rejected",
        "no default notice",
    )
    second = _claim(client, bank_a, loan["id"], "100000")
    client.post(f"/api/v1/claims/{second}/approve", json={}, headers=officer.headers)
    client.post(f"/api/v1/claims/{second}/pay", headers=approver.headers)
    r = client.post(
        f"/api/v1/claims/{second}/close-collection",
        json={"date": (date.fromisoformat(loan["first_disbursed_on"]) + timedelta(days=200)).isoformat()},
        headers=bank_a.headers,
    )
    assert r.status_code == 200, r.text
    states = [
        (e["data"]["previous_state"], e["data"]["state"]) for e in _events(session, "loan.state_changed")
    ]
    assert states == [("non_performing", "compensated"), ("compensated", "written_off")]
    final = _events(session, "loan.state_changed")[-1]["data"]
    api = client.get(f"/api/v1/loans/{loan['id']}", headers=bank_a.headers).json()
    api.pop("events")
    assert {k: v for k, v in final.items() if k != "previous_state"} == api


@pytest.mark.usefixtures("funded", "lenient_breakers")
def test_the_loan_write_path_tells_state_changes(
    client: TestClient,
    session: Session,
    bank_a: Caller,
    bank_b: Caller,
    npl_loan: NplLoan,
    endpoint: EndpointMaker,
) -> None:
    """Single requests and batches (the one write path) emit `loan.state_changed` for the states a bank is
    told about, each with the loan as it was just after its own event, for the banks that listen."""
    a = npl_loan(bank_a, "1000", dpd=10)  # overdue
    b = npl_loan(bank_b, "1000", dpd=10)
    endpoint(bank_a, event_types=["loan.state_changed"])
    day = date.fromisoformat(a["first_disbursed_on"]) + timedelta(days=200)  # today: after every event
    post = {"bank_event_ref": "W-1", "date": day.isoformat(), "days_past_due": 95}
    assert (
        client.post(f"/api/v1/loans/{a['id']}/delinquency", json=post, headers=bank_a.headers).status_code
        == 201
    )
    # a batch: cured (not told), overdue again, then repaid in full (settled)
    items = [
        {"type": "delinquency", "bank_loan_ref": a["bank_loan_ref"], "bank_event_ref": "W-2",
         "date": day.isoformat(), "days_past_due": 0},
        {"type": "delinquency", "bank_loan_ref": a["bank_loan_ref"], "bank_event_ref": "W-3",
         "date": day.isoformat(), "days_past_due": 3},
        {"type": "repayment", "bank_loan_ref": a["bank_loan_ref"], "bank_event_ref": "W-4",
         "date": day.isoformat(), "principal": "1000"},
    ]  # fmt: skip
    assert (
        client.post("/api/v1/loans/batch", json={"items": items}, headers=bank_a.headers).status_code == 200
    )
    post = {"bank_event_ref": "W-5", "date": day.isoformat(), "days_past_due": 95}
    assert (
        client.post(f"/api/v1/loans/{b['id']}/delinquency", json=post, headers=bank_b.headers).status_code
        == 201
    )
    got = [
        (e["data"]["id"], e["data"]["previous_state"], e["data"]["state"], e["data"]["outstanding_principal"])
        for e in _events(session)
    ]
    assert got == [
        (a["id"], "overdue", "non_performing", "1000.00"),
        (a["id"], "active", "overdue", "1000.00"),
        (a["id"], "overdue", "settled", "0.00"),
    ]
    assert _events(session)[0]["data"]["credit_code"] == a["credit_code"]


def test_month_reopened(session: Session, bank_a: Caller, endpoint: EndpointMaker) -> None:
    endpoint(bank_a, event_types=["month.reopened"])
    n = webhook_events.month_reopened(
        session,
        bank_id=bank_a.id,
        month_end=date(2021, 6, 30),
        closed_through=date(2021, 5, 31),
        reason="typo",
    )
    assert n == 1
    [event] = _events(session)
    assert event["data"] == {
        "bank_id": bank_a.id,
        "month_end": "2021-06-30",
        "closed_through": "2021-05-31",
        "reason": "typo",
    }
