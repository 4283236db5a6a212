"""Stripe's idempotency contract on bank POSTs."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loanfund.core.idempotency import request_fingerprint
from loanfund.loans.models import Loan, LoanEvent
from loanfund.loans.schemas import BatchCreate
from tests.factories import Caller, contract_payload, make_enterprise

pytestmark = pytest.mark.usefixtures("funded")

URL = "/api/v1/loans"


@pytest.fixture
def code(session: Session) -> str:
    return make_enterprise(session).credit_code


def test_replay_returns_the_first_response(
    client: TestClient, bank_a: Caller, code: str, session: Session
) -> None:
    h = {**bank_a.headers, "Idempotency-Key": "k-1"}
    body = contract_payload(code, "IDEM-1")
    first = client.post(URL, json=body, headers=h)
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    again = client.post(URL, json=body, headers=h)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert session.scalar(select(func.count()).select_from(Loan).where(Loan.bank_loan_ref == "IDEM-1")) == 1


def test_refusals_are_replayed_too(client: TestClient, bank_a: Caller, code: str) -> None:
    h = {**bank_a.headers, "Idempotency-Key": "k-err"}
    body = contract_payload(code, annual_rate_pct="9")
    first = client.post(URL, json=body, headers=h)
    assert first.status_code == 422
    again = client.post(URL, json=body, headers=h)
    assert (again.status_code, again.content) == (422, first.content)
    assert again.headers["idempotent-replayed"] == "true"


def test_same_key_different_body_is_422(client: TestClient, bank_a: Caller, code: str) -> None:
    h = {**bank_a.headers, "Idempotency-Key": "k-2"}
    assert client.post(URL, json=contract_payload(code, "A"), headers=h).status_code == 201
    r = client.post(URL, json=contract_payload(code, "B"), headers=h)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "idempotency_key_reused"


def test_keys_are_scoped_to_the_bank(client: TestClient, bank_a: Caller, bank_b: Caller, code: str) -> None:
    body = contract_payload(code, "SHARED")
    a = client.post(URL, json=body, headers={**bank_a.headers, "Idempotency-Key": "same"})
    b = client.post(URL, json=body, headers={**bank_b.headers, "Idempotency-Key": "same"})
    assert a.status_code == b.status_code == 201
    assert a.json()["bank_id"] != b.json()["bank_id"]
    assert "idempotent-replayed" not in b.headers


def test_event_replay_moves_money_once(
    client: TestClient, bank_a: Caller, code: str, session: Session
) -> None:
    lid = client.post(URL, json=contract_payload(code), headers=bank_a.headers).json()["id"]
    h = {**bank_a.headers, "Idempotency-Key": "disb-1"}
    body = {"bank_event_ref": "D-1", "date": "2021-03-05", "amount": "1000"}
    first = client.post(f"{URL}/{lid}/disbursements", json=body, headers=h)
    second = client.post(f"{URL}/{lid}/disbursements", json=body, headers=h)
    assert first.content == second.content
    assert session.scalar(select(func.count()).select_from(LoanEvent).where(LoanEvent.loan_id == lid)) == 1
    assert client.get(f"{URL}/{lid}", headers=bank_a.headers).json()["disbursed"] == "1000.00"


def test_key_too_long_is_422(client: TestClient, bank_a: Caller, code: str) -> None:
    r = client.post(
        URL, json=contract_payload(code), headers={**bank_a.headers, "Idempotency-Key": "x" * 256}
    )
    assert r.status_code == 422


def test_fingerprint_is_of_the_request_not_its_spelling() -> None:
    item = {
        "type": "repayment",
        "bank_loan_ref": "L-1",
        "bank_event_ref": "r-1",
        "date": "2021-04-02",
        "principal": "10.00",
    }
    body = BatchCreate.model_validate({"items": [item]})
    respelled = BatchCreate.model_validate_json(
        '{ "items" : [ {"principal": "10.00", "date": "2021-04-02", "bank_event_ref": "r-1",'
        ' "bank_loan_ref": "L-1", "type": "repayment", "interest": "0"} ] }'
    )
    url = "/api/v1/loans/batch"
    assert request_fingerprint("POST", url, body) == request_fingerprint("POST", url, respelled)
    other = BatchCreate.model_validate({"items": [{**item, "principal": "10.01"}]})
    assert request_fingerprint("POST", url, body) != request_fingerprint("POST", url, other)
    assert request_fingerprint("POST", url, body) != request_fingerprint("POST", "/api/v1/loans", body)
    assert request_fingerprint("POST", url, {"b": 1, "a": [2]}) == request_fingerprint(
        "POST", url, {"a": [2], "b": 1}
    )
