"""A bank's whole loan, step by step, with every state and balance checked to the fen."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from tests.factories import Caller, contract_payload, make_enterprise

pytestmark = pytest.mark.usefixtures("funded")

URL = "/api/v1/loans"


@pytest.fixture
def code(session: Session) -> str:
    return make_enterprise(session).credit_code


def _ok(r: Any, status: int = 201) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    return body


def test_contract_to_non_performing(client: TestClient, bank_a: Caller, code: str, session: Session) -> None:
    h = bank_a.headers
    loan = _ok(client.post(URL, json=contract_payload(code, "CCB-1"), headers=h))
    assert (loan["state"], loan["outstanding_principal"]) == ("approved", "0.00")
    lid = loan["id"]

    r = _ok(
        client.post(
            f"{URL}/{lid}/disbursements",
            json={"bank_event_ref": "D1", "date": "2021-03-02", "amount": "1000000.00"},
            headers=h,
        )
    )
    assert (r["loan"]["state"], r["loan"]["outstanding_principal"]) == ("active", "1000000.00")
    r = _ok(
        client.post(
            f"{URL}/{lid}/disbursements",
            json={"bank_event_ref": "D2", "date": "2021-04-01", "amount": "2000000.00"},
            headers=h,
        )
    )
    assert (r["loan"]["disbursed"], r["loan"]["outstanding_principal"]) == ("3000000.00", "3000000.00")

    r = _ok(
        client.post(
            f"{URL}/{lid}/repayments",
            json={
                "bank_event_ref": "R1",
                "date": "2021-05-01",
                "principal": "250000.01",
                "interest": "10875.00",
            },
            headers=h,
        )
    )
    assert r["loan"]["outstanding_principal"] == "2749999.99"
    assert r["loan"]["interest_repaid"] == "10875.00"
    r = _ok(
        client.post(
            f"{URL}/{lid}/repayments",
            json={"bank_event_ref": "R2", "date": "2021-06-01", "interest": "9968.75"},
            headers=h,
        )
    )
    assert r["loan"]["outstanding_principal"] == "2749999.99"
    assert r["loan"]["interest_repaid"] == "20843.75"

    r = _ok(
        client.post(
            f"{URL}/{lid}/delinquency",
            json={"bank_event_ref": "DQ1", "date": "2021-07-31", "days_past_due": 30},
            headers=h,
        )
    )
    assert (r["loan"]["state"], r["loan"]["days_past_due"]) == ("overdue", 30)
    r = _ok(
        client.post(
            f"{URL}/{lid}/delinquency",
            json={"bank_event_ref": "DQ2", "date": "2021-09-30", "days_past_due": 91},
            headers=h,
        )
    )
    assert r["loan"]["state"] == "non_performing"
    assert r["loan"]["npl_since"] == "2021-09-29"
    assert r["loan"]["outstanding_principal"] == "2749999.99"

    detail = _ok(client.get(f"{URL}/{lid}", headers=h), 200)
    assert [e["bank_event_ref"] for e in detail["events"]] == ["D1", "D2", "R1", "R2", "DQ1", "DQ2"]
    actions = session.scalars(
        select(AuditRecord.action).where(AuditRecord.entity_type == "loan", AuditRecord.entity_id == str(lid))
    ).all()
    assert (
        actions
        == ["loan.create"] + ["loan.disbursement"] * 2 + ["loan.repayment"] * 2 + ["loan.delinquency"] * 2
    )
    state_change = session.scalars(
        select(AuditRecord).where(AuditRecord.entity_id == str(lid), AuditRecord.action == "loan.delinquency")
    ).all()[-1]
    assert state_change.before is not None
    assert state_change.after is not None
    assert (state_change.before["state"], state_change.after["state"]) == ("overdue", "non_performing")
    assert state_change.actor_kind == "bank"
    assert state_change.actor_id == bank_a.id


def test_settled_when_repaid_in_full_and_cure(client: TestClient, bank_a: Caller, code: str) -> None:
    h = bank_a.headers
    lid = _ok(client.post(URL, json=contract_payload(code, amount="100000"), headers=h))["id"]
    client.post(
        f"{URL}/{lid}/disbursements",
        json={"bank_event_ref": "a1", "date": "2021-03-01", "amount": "100000"},
        headers=h,
    )
    r = _ok(
        client.post(
            f"{URL}/{lid}/delinquency",
            json={"bank_event_ref": "a2", "date": "2021-04-10", "days_past_due": 10},
            headers=h,
        )
    )
    assert r["loan"]["state"] == "overdue"
    r = _ok(
        client.post(
            f"{URL}/{lid}/delinquency",
            json={"bank_event_ref": "a3", "date": "2021-04-20", "days_past_due": 0},
            headers=h,
        )
    )
    assert r["loan"]["state"] == "active"
    r = _ok(
        client.post(
            f"{URL}/{lid}/repayments",
            json={"bank_event_ref": "a4", "date": "2021-05-01", "principal": "100000", "interest": "362.50"},
            headers=h,
        )
    )
    assert (r["loan"]["state"], r["loan"]["settled_on"]) == ("settled", "2021-05-01")
    r = client.post(
        f"{URL}/{lid}/disbursements",
        json={"bank_event_ref": "a5", "date": "2021-05-02", "amount": "1"},
        headers=h,
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "loan_state_invalid"


@pytest.mark.parametrize(
    ("overrides", "status", "code_", "field"),
    [
        ({"amount": "-1"}, 422, "validation_error", "amount"),
        ({"amount": "0"}, 422, "validation_error", "amount"),
        ({"amount": "1.001"}, 422, "validation_error", "amount"),
        ({"maturity_date": "2022-03-02"}, 422, "term_too_long", "maturity_date"),
        ({"maturity_date": "2021-02-01"}, 422, "maturity_before_start", "maturity_date"),
        ({"annual_rate_pct": "5.36"}, 422, "rate_above_cap", "annual_rate_pct"),
        ({"amount": "3000000.01"}, 422, "amount_exceeds_credit_line", "amount"),
        ({"start_date": "2021-02-30"}, 422, "validation_error", "start_date"),
        ({"credit_code": "91500114MA00000017"}, 422, None, "credit_code"),
    ],
)
def test_contract_refusals(
    client: TestClient,
    bank_a: Caller,
    code: str,
    overrides: dict[str, str],
    status: int,
    code_: str | None,
    field: str,
) -> None:
    r = client.post(URL, json=contract_payload(code, **overrides), headers=bank_a.headers)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    if code_:
        assert err["code"] == code_
    assert err["details"][0]["field"] == field


def test_unknown_and_unregistered_enterprise(client: TestClient, bank_a: Caller, session: Session) -> None:
    from tests.factories import credit_code

    r = client.post(URL, json=contract_payload(credit_code()), headers=bank_a.headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "enterprise_unknown"
    unregistered = make_enterprise(session, tech_reg_no=None, tech_reg_date=None).credit_code
    r = client.post(URL, json=contract_payload(unregistered), headers=bank_a.headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "enterprise_not_registered"


def test_event_refusals(client: TestClient, bank_a: Caller, code: str) -> None:
    h = bank_a.headers
    lid = _ok(client.post(URL, json=contract_payload(code, amount="500000"), headers=h))["id"]

    def post(kind: str, body: dict[str, Any]) -> tuple[int, str]:
        r = client.post(f"{URL}/{lid}/{kind}", json=body, headers=h)
        return r.status_code, r.json().get("error", {}).get("code", "")

    assert post("disbursements", {"bank_event_ref": "e1", "date": "2021-02-28", "amount": "1"}) == (
        422,
        "disbursement_before_contract",
    )
    assert post("repayments", {"bank_event_ref": "e2", "date": "2021-03-05", "principal": "1"}) == (
        409,
        "repayment_before_disbursement",
    )
    assert post("delinquency", {"bank_event_ref": "e3", "date": "2021-03-05", "days_past_due": 3}) == (
        409,
        "loan_not_disbursed",
    )
    assert post("disbursements", {"bank_event_ref": "e4", "date": "2021-03-01", "amount": "500000.01"}) == (
        409,
        "disbursement_exceeds_contract",
    )
    assert post("disbursements", {"bank_event_ref": "e5", "date": "2021-03-01", "amount": "0"})[0] == 422
    assert post("disbursements", {"bank_event_ref": "e6", "date": "2099-03-01", "amount": "1"}) == (
        422,
        "event_in_future",
    )
    assert post("disbursements", {"bank_event_ref": "ok1", "date": "2021-03-01", "amount": "400000"}) == (
        201,
        "",
    )
    assert post("repayments", {"bank_event_ref": "e7", "date": "2021-04-01", "principal": "400000.01"}) == (
        409,
        "repayment_exceeds_outstanding",
    )
    assert post("repayments", {"bank_event_ref": "e8", "date": "2021-04-01", "principal": "-5"})[0] == 422
    assert post("repayments", {"bank_event_ref": "e9", "date": "2021-04-01"}) == (422, "amount_not_positive")
    assert post("delinquency", {"bank_event_ref": "e10", "date": "2021-04-01", "days_past_due": -1})[0] == 422
    assert post("disbursements", {"bank_event_ref": "ok1", "date": "2021-03-02", "amount": "1"}) == (
        409,
        "bank_event_ref_taken",
    )
    assert post("disbursements", {"bank_event_ref": "bad ref", "date": "2021-03-02", "amount": "1"})[0] == 422


def test_duplicate_bank_loan_ref_cannot_duplicate_money(
    client: TestClient, bank_a: Caller, bank_b: Caller, code: str
) -> None:
    body = contract_payload(code, "SAME-REF")
    first = _ok(client.post(URL, json=body, headers=bank_a.headers))
    r = client.post(URL, json=body, headers=bank_a.headers)
    assert r.status_code == 409
    assert r.json()["error"]["details"]["loan_id"] == first["id"]
    # the same reference at another bank is another loan
    assert client.post(URL, json=body, headers=bank_b.headers).status_code == 201


def test_bank_b_cannot_see_or_touch_bank_a(
    client: TestClient, bank_a: Caller, bank_b: Caller, analyst: Caller, code: str
) -> None:
    lid = _ok(client.post(URL, json=contract_payload(code, "A-1"), headers=bank_a.headers))["id"]
    hb = bank_b.headers
    assert client.get(f"{URL}/{lid}", headers=hb).status_code == 404
    assert client.get(f"{URL}/by-ref/A-1", headers=hb).status_code == 404
    assert client.get(URL, headers=hb).json()["items"] == []
    for kind, body in [
        ("disbursements", {"bank_event_ref": "x", "date": "2021-03-02", "amount": "1"}),
        ("repayments", {"bank_event_ref": "y", "date": "2021-03-02", "principal": "1"}),
        ("delinquency", {"bank_event_ref": "z", "date": "2021-03-02", "days_past_due": 1}),
    ]:
        r = client.post(f"{URL}/{lid}/{kind}", json=body, headers=hb)
        assert r.status_code == 404, kind
    assert client.get(f"{URL}/{lid}", headers=analyst.headers).status_code == 200
    assert client.post(URL, json=contract_payload(code), headers=analyst.headers).status_code == 403


def test_list_filters(client: TestClient, bank_a: Caller, code: str, session: Session) -> None:
    other = make_enterprise(session).credit_code
    h = bank_a.headers
    _ok(
        client.post(
            URL, json=contract_payload(code, start_date="2021-01-10", maturity_date="2021-12-10"), headers=h
        )
    )
    lid = _ok(
        client.post(
            URL, json=contract_payload(other, start_date="2021-06-10", maturity_date="2022-06-09"), headers=h
        )
    )["id"]
    client.post(
        f"{URL}/{lid}/disbursements",
        json={"bank_event_ref": "f1", "date": "2021-06-10", "amount": "10"},
        headers=h,
    )
    assert [x["id"] for x in client.get(URL, params={"state": "active"}, headers=h).json()["items"]] == [lid]
    assert [x["id"] for x in client.get(URL, params={"credit_code": other}, headers=h).json()["items"]] == [
        lid
    ]
    assert [
        x["id"] for x in client.get(URL, params={"start_from": "2021-06-01"}, headers=h).json()["items"]
    ] == [lid]
    assert len(client.get(URL, params={"start_to": "2021-12-31"}, headers=h).json()["items"]) == 2


def test_suspended_bank_cannot_register(
    client: TestClient, bank_a: Caller, officer: Caller, code: str
) -> None:
    client.post(f"/api/v1/banks/{bank_a.id}/suspend", json={"reason": "review"}, headers=officer.headers)
    r = client.post(URL, json=contract_payload(code), headers=bank_a.headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "bank_suspended"


def test_lending_quota(client: TestClient, bank_a: Caller, officer: Caller, code: str) -> None:
    client.patch(f"/api/v1/banks/{bank_a.id}", json={"lending_quota": "4000000"}, headers=officer.headers)
    assert client.post(URL, json=contract_payload(code), headers=bank_a.headers).status_code == 201
    r = client.post(URL, json=contract_payload(code, amount="1000000.01"), headers=bank_a.headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "bank_quota_exceeded"
