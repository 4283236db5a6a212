"""Exposure, the leverage cap and the circuit breakers, through the API."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from tests.conftest import NplLoan
from tests.factories import Caller, contribute, make_enterprise


def _contract(client: TestClient, caller: Caller, code: str, ref: str, amount: str, today: date) -> Any:
    start = today - timedelta(days=30)
    return client.post(
        "/api/v1/loans",
        json={
            "bank_loan_ref": ref,
            "credit_code": code,
            "amount": amount,
            "annual_rate_pct": "3.5",
            "start_date": start.isoformat(),
            "maturity_date": (start + timedelta(days=300)).isoformat(),
        },
        headers=caller.headers,
    )


def _disburse(client: TestClient, caller: Caller, loan_id: int, ref: str, amount: str, today: date) -> Any:
    return client.post(
        f"/api/v1/loans/{loan_id}/disbursements",
        json={"bank_event_ref": ref, "date": (today - timedelta(days=29)).isoformat(), "amount": amount},
        headers=caller.headers,
    )


def test_leverage_cap(client: TestClient, session: Session, bank_a: Caller, today: date) -> None:
    contribute(session, 1_000_000)  # the cap admits 10,000,000 of covered principal
    code = make_enterprise(session).credit_code
    ids = []
    for i in range(2):
        r = _contract(client, bank_a, code, f"LEV-{i}", "5000000", today)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
        assert _disburse(client, bank_a, ids[-1], f"LEV-{i}-d", "5000000", today).status_code == 201
    r = _contract(client, bank_a, code, "LEV-2", "0.01", today)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "fund_leverage_exceeded"
    # a repayment makes room again
    client.post(
        f"/api/v1/loans/{ids[0]}/repayments",
        json={
            "bank_event_ref": "LEV-r",
            "date": (today - timedelta(days=1)).isoformat(),
            "principal": "1000",
        },
        headers=bank_a.headers,
    )
    assert _contract(client, bank_a, code, "LEV-3", "1000", today).status_code == 201
    r = _contract(client, bank_a, code, "LEV-4", "1000", today)
    lid = r.json()["id"]
    r = _disburse(client, bank_a, lid, "LEV-4-d", "1000.01", today)
    assert r.status_code == 409
    assert r.json()["error"]["code"] in (
        "fund_leverage_exceeded",
        "disbursement_exceeds_contract",
    )


@pytest.mark.usefixtures("fund_10m")
def test_exposure_per_bank_and_total(
    client: TestClient, session: Session, bank_a: Caller, bank_b: Caller, analyst: Caller, today: date
) -> None:
    code = make_enterprise(session).credit_code
    for caller, amount in ((bank_a, "3000000"), (bank_b, "1000000")):
        lid = _contract(client, caller, code, "EXP-1", amount, today).json()["id"]
        assert _disburse(client, caller, lid, "EXP-1-d", amount, today).status_code == 201
    view = client.get("/api/v1/fund/exposure", headers=analyst.headers).json()
    lines = {b["bank_code"]: b for b in view["banks"]}
    assert lines["BANK_A"]["covered_outstanding"] == "3000000.00"
    assert lines["BANK_A"]["max_liability"] == "2400000.00"
    assert lines["BANK_B"]["covered_outstanding"] == "1000000.00"
    total = view["total"]
    assert (total["covered_outstanding"], total["max_liability"]) == ("4000000.00", "3200000.00")
    assert total["fund_balance"] == "10000000.00"
    assert total["leverage"] == "0.4000"
    assert total["coverage_ratio"] == "3.1250"
    assert total["headroom"] == "96000000.00"
    own = client.get("/api/v1/fund/exposure", headers=bank_b.headers).json()
    assert [b["bank_code"] for b in own["banks"]] == ["BANK_B"]
    assert own["total"] is None
    before = client.get(
        "/api/v1/fund/exposure",
        params={"as_of": (today - timedelta(days=40)).isoformat()},
        headers=analyst.headers,
    ).json()
    assert before["total"]["covered_outstanding"] == "0.00"


@pytest.mark.usefixtures("fund_10m")
def test_bank_breaker_suspends_and_officer_lifts(
    client: TestClient,
    session: Session,
    bank_a: Caller,
    officer: Caller,
    analyst: Caller,
    npl_loan: NplLoan,
    today: date,
) -> None:
    code = make_enterprise(session).credit_code
    for i in range(2):  # 9,400,000 performing
        lid = _contract(client, bank_a, code, f"OK-{i}", "4700000", today).json()["id"]
        _disburse(client, bank_a, lid, f"OK-{i}-d", "4700000", today)
    npl_loan(bank_a, "600000")  # 600,000 / 10,000,000 = 6% → warning
    breakers = client.get("/api/v1/fund/breakers", headers=analyst.headers).json()
    line = next(b for b in breakers["breakers"] if b["bank_id"] == bank_a.id)
    assert (line["state"], line["ratio"]) == ("warning", "0.0600")
    npl_loan(bank_a, "300000")  # 900,000 / 10,300,000 ≈ 8.7% → suspended
    r = _contract(client, bank_a, code, "NEW-1", "1000", today)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "coverage_suspended"
    assert (
        client.post(
            f"/api/v1/fund/breakers/{bank_a.id}/lift", json={"reason": "x"}, headers=analyst.headers
        ).status_code
        == 403
    )
    r = client.post(
        f"/api/v1/fund/breakers/{bank_a.id}/lift",
        json={"reason": "restructuring plan agreed"},
        headers=officer.headers,
    )
    assert r.status_code == 200
    assert r.json()["state"] == "warning"
    assert _contract(client, bank_a, code, "NEW-2", "1000", today).status_code == 201
    changes = session.scalars(
        select(AuditRecord).where(AuditRecord.entity_type == "breaker").order_by(AuditRecord.id)
    ).all()
    assert [(c.action, (c.after or {}).get("state")) for c in changes] == [
        ("breaker.change", "warning"),
        ("breaker.change", "suspended"),
        ("breaker.lift", "warning"),
    ]
    again = client.post(
        f"/api/v1/fund/breakers/{bank_a.id}/lift", json={"reason": "again"}, headers=officer.headers
    )
    assert again.status_code == 409


@pytest.mark.usefixtures("lenient_breakers")
def test_programme_breaker_stops_coverage(
    client: TestClient,
    session: Session,
    settings: Any,
    bank_a: Caller,
    officer: Caller,
    approver: Caller,
    analyst: Caller,
    npl_loan: NplLoan,
    today: date,
) -> None:
    contribute(session, 1_000_000)
    loan = npl_loan(bank_a, "700000")
    cid = client.post(
        "/api/v1/claims",
        json={"loan_id": loan["id"], "principal_at_default": "700000"},
        headers=bank_a.headers,
    ).json()["id"]
    client.post(f"/api/v1/claims/{cid}/approve", json={}, headers=officer.headers)
    assert client.post(f"/api/v1/claims/{cid}/pay", headers=approver.headers).json()["state"] == "paid"
    # 560,000 paid this year ≥ 50% of a 1,000,000 fund
    breakers = client.get("/api/v1/fund/breakers", headers=analyst.headers).json()
    assert breakers["programme"]["coverage_stopped"] is True
    code = make_enterprise(session).credit_code
    r = _contract(client, bank_a, code, "STOP-1", "1000", today)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "coverage_stopped"
    assert session.scalar(select(AuditRecord).where(AuditRecord.entity_id == "programme")) is not None

    # a top-up brings the ratio under the line (560,000 ÷ 3,000,000): the stop holds all the same
    contribute(session, 2_000_000)
    breakers = client.get("/api/v1/fund/breakers", headers=analyst.headers).json()
    assert Decimal(breakers["programme"]["ratio"]) < Decimal(breakers["programme"]["stop_ratio"])
    assert breakers["programme"]["coverage_stopped"] is True
    programme, *banks = breakers["breakers"]
    assert (programme["scope"], programme["state"], programme["bank_code"]) == ("programme", "stopped", None)
    assert banks
    assert all(b["bank_code"] for b in banks)
    r = _contract(client, bank_a, code, "STOP-2", "1000", today)
    assert r.json()["error"]["code"] == "coverage_stopped"
    # only an officer lifts it, with a reason; audited
    lift = "/api/v1/fund/breakers/programme/lift"
    assert client.post(lift, json={"reason": "reviewed"}, headers=analyst.headers).status_code == 403
    assert client.post(lift, json={}, headers=officer.headers).status_code == 422
    r = client.post(lift, json={"reason": "2021 payouts reviewed; top-up received"}, headers=officer.headers)
    assert (r.status_code, r.json()["state"], r.json()["lifted"]) == (200, "normal", True)
    assert client.post(lift, json={"reason": "again"}, headers=officer.headers).status_code == 409
    assert _contract(client, bank_a, code, "STOP-3", "1000", today).status_code == 201
    lifted = session.scalars(
        select(AuditRecord).where(AuditRecord.entity_id == "programme", AuditRecord.action == "breaker.lift")
    ).one()
    assert lifted.reason == "2021 payouts reviewed; top-up received"
