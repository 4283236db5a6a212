"""A bank's client, scripted end to end: application → evaluation → approval → contract → two
disbursements → repayments → overdue → non-performing, every state and balance checked to the fen;
then every request replayed with the same Idempotency-Key changes nothing and answers identical bodies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from loanfund.loans.models import LoanEvent
from tests.factories import Caller, application_payload, make_enterprise

pytestmark = pytest.mark.usefixtures("funded")


def test_the_whole_journey_and_its_replay(
    client: TestClient, bank_a: Caller, session: Session, on_day: Callable[[date], None]
) -> None:
    on_day(date(2021, 3, 1))
    code = make_enterprise(session).credit_code
    submitted = client.post(
        "/api/v1/applications", json=application_payload(code, "BANK_A", requested_amount="3000000")
    )
    assert submitted.status_code == 201, submitted.text
    app = submitted.json()
    number, token = app["application_no"], app["status_token"]
    assert app["status"] == "pending_bank"
    assert app["evaluation"]["grade"] == "A"
    assert app["evaluation"]["credit_line"] == "3000000.00"  # the 2017 table is in force in 2021

    calls: list[tuple[str, str, dict[str, Any], str]] = []
    answers: list[bytes] = []

    def bank_post(path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
        key = f"journey-{len(calls)}"
        r = client.post(path, json=body, headers={**bank_a.headers, "Idempotency-Key": key})
        assert r.status_code == status, r.text
        calls.append(("POST", path, body, key))
        answers.append(r.content)
        result: dict[str, Any] = r.json()
        return result

    decision = bank_post(
        f"/api/v1/bank/applications/{number}/approve",
        {"amount": "3000000", "term_months": 12, "annual_rate_pct": "4.35"},
        200,
    )
    assert decision["status"] == "approved"
    loan = bank_post(
        "/api/v1/loans",
        {
            "bank_loan_ref": "J-001",
            "credit_code": code,
            "application_no": number,
            "amount": "3000000",
            "annual_rate_pct": "4.35",
            "start_date": "2021-03-02",
            "maturity_date": "2022-03-01",
        },
    )
    lid = loan["id"]
    assert (loan["state"], loan["outstanding_principal"]) == ("approved", "0.00")

    steps = [
        (
            "disbursements",
            {"bank_event_ref": "J-D1", "date": "2021-03-02", "amount": "1800000.00"},
            "active",
            "1800000.00",
            0,
        ),
        (
            "disbursements",
            {"bank_event_ref": "J-D2", "date": "2021-03-20", "amount": "1200000.00"},
            "active",
            "3000000.00",
            0,
        ),
        (
            "repayments",
            {
                "bank_event_ref": "J-R1",
                "date": "2021-04-21",
                "principal": "125000.00",
                "interest": "10875.00",
            },
            "active",
            "2875000.00",
            0,
        ),
        (
            "repayments",
            {
                "bank_event_ref": "J-R2",
                "date": "2021-05-21",
                "principal": "125000.00",
                "interest": "10421.88",
            },
            "active",
            "2750000.00",
            0,
        ),
        (
            "delinquency",
            {"bank_event_ref": "J-Q1", "date": "2021-06-30", "days_past_due": 40},
            "overdue",
            "2750000.00",
            40,
        ),
        (
            "delinquency",
            {"bank_event_ref": "J-Q2", "date": "2021-08-31", "days_past_due": 102},
            "non_performing",
            "2750000.00",
            102,
        ),
    ]
    for kind, body, state, outstanding, dpd in steps:
        result = bank_post(f"/api/v1/loans/{lid}/{kind}", body)["loan"]
        assert (result["state"], result["outstanding_principal"], result["days_past_due"]) == (
            state,
            outstanding,
            dpd,
        )
    final = client.get(f"/api/v1/loans/{lid}", headers=bank_a.headers).json()
    assert final["disbursed"] == "3000000.00"
    assert final["principal_repaid"] == "250000.00"
    assert final["interest_repaid"] == "21296.88"
    assert final["npl_since"] == "2021-08-19"

    status = client.get(f"/api/v1/applications/{number}", headers={"Authorization": f"Bearer {token}"}).json()
    assert status["status"] == "lent"
    assert status["loan"]["state"] == "non_performing"
    assert status["loan"]["outstanding_principal"] == "2750000.00"

    events_before = session.scalar(select(func.count()).select_from(LoanEvent))
    audit_before = session.scalar(select(func.count()).select_from(AuditRecord))
    for (_, path, body, key), first in zip(calls, answers, strict=True):
        r = client.post(path, json=body, headers={**bank_a.headers, "Idempotency-Key": key})
        assert r.headers.get("idempotent-replayed") == "true"
        assert r.content == first
    assert session.scalar(select(func.count()).select_from(LoanEvent)) == events_before
    assert session.scalar(select(func.count()).select_from(AuditRecord)) == audit_before
    assert client.get(f"/api/v1/loans/{lid}", headers=bank_a.headers).json() == final


def test_contract_must_match_its_approval(
    client: TestClient, bank_a: Caller, bank_b: Caller, session: Session, on_day: Callable[[date], None]
) -> None:
    on_day(date(2021, 3, 1))
    code = make_enterprise(session).credit_code
    other = make_enterprise(session).credit_code
    number = client.post("/api/v1/applications", json=application_payload(code, "BANK_A")).json()[
        "application_no"
    ]
    body = {
        "bank_loan_ref": "M-1",
        "credit_code": code,
        "application_no": number,
        "amount": "1000000",
        "annual_rate_pct": "4.35",
        "start_date": "2021-03-02",
        "maturity_date": "2022-03-01",
    }
    r = client.post("/api/v1/loans", json=body, headers=bank_a.headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "application_state_invalid"
    client.post(
        f"/api/v1/bank/applications/{number}/approve",
        json={"amount": "800000", "term_months": 6, "annual_rate_pct": "4.0"},
        headers=bank_a.headers,
    )
    for change, error in [
        ({"amount": "800000.01"}, "amount_exceeds_approval"),
        ({"maturity_date": "2021-09-03"}, "term_exceeds_approval"),
        ({"annual_rate_pct": "4.01", "amount": "800000"}, "rate_exceeds_approval"),
        ({"credit_code": other, "amount": "800000"}, "application_mismatch"),
    ]:
        r = client.post(
            "/api/v1/loans",
            json={
                **body,
                "amount": "800000",
                "maturity_date": "2021-09-02",
                "annual_rate_pct": "4.0",
                **change,
            },
            headers=bank_a.headers,
        )
        assert r.status_code == 422, change
        assert r.json()["error"]["code"] == error
    assert (
        client.post(
            "/api/v1/loans",
            json={**body, "amount": "800000", "maturity_date": "2021-09-02", "annual_rate_pct": "4.0"},
            headers=bank_b.headers,
        ).status_code
        == 404
    )
    ok = client.post(
        "/api/v1/loans",
        json={**body, "amount": "800000", "maturity_date": "2021-09-02", "annual_rate_pct": "4.0"},
        headers=bank_a.headers,
    )
    assert ok.status_code == 201
    again = client.post(
        "/api/v1/loans",
        json={
            **body,
            "bank_loan_ref": "M-2",
            "amount": "800000",
            "maturity_date": "2021-09-02",
            "annual_rate_pct": "4.0",
        },
        headers=bank_a.headers,
    )
    assert again.status_code == 409
