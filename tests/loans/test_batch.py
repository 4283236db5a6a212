from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loanfund.loans.models import Loan
from tests.factories import Caller, contract_payload, make_enterprise

pytestmark = pytest.mark.usefixtures("funded")

URL = "/api/v1/loans/batch"


@pytest.fixture
def code(session: Session) -> str:
    return make_enterprise(session).credit_code


def _items(code: str, n: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for i in range(n):
        ref = f"B-{i}"
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
        items.append(
            {
                "type": "repayment",
                "bank_loan_ref": ref,
                "bank_event_ref": f"{ref}-r",
                "date": "2021-04-02",
                "principal": "40000",
                "interest": "300",
            }
        )
    return items


def test_batch_writes_everything(client: TestClient, bank_a: Caller, code: str, session: Session) -> None:
    r = client.post(URL, json={"items": _items(code, 5)}, headers=bank_a.headers)
    assert r.status_code == 200, r.text
    assert r.json()["contracts"] == 5
    assert r.json()["events"] == 10
    loans = session.scalars(select(Loan).where(Loan.bank_id == bank_a.id)).all()
    assert len(loans) == 5
    assert {loan.outstanding_fen for loan in loans} == {6_000_000}


def test_batch_is_atomic_and_lists_every_bad_item(
    client: TestClient, bank_a: Caller, code: str, session: Session
) -> None:
    items = _items(code, 4)
    items[1]["amount"] = "100000.01"  # over the contract
    items[5]["principal"] = "999999"  # above outstanding
    items.append(
        {
            "type": "repayment",
            "bank_loan_ref": "NOPE",
            "bank_event_ref": "n",
            "date": "2021-04-02",
            "principal": "1",
        }
    )
    items.append({"type": "contract", **contract_payload(code, "B-0")})  # duplicate ref within the batch
    r = client.post(URL, json={"items": items}, headers=bank_a.headers)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "batch_invalid"
    by_index = {d["index"]: d["code"] for d in err["details"]}
    assert by_index == {
        1: "disbursement_exceeds_contract",
        2: "repayment_before_disbursement",
        5: "repayment_exceeds_outstanding",
        12: "loan_unknown",
        13: "bank_loan_ref_taken",
    }
    assert session.scalar(select(func.count()).select_from(Loan).where(Loan.bank_id == bank_a.id)) == 0


def test_malformed_items_are_422_by_index(client: TestClient, bank_a: Caller, code: str) -> None:
    items = _items(code, 1)
    items[0]["amount"] = "-3"
    items[1]["date"] = "2021-13-01"
    r = client.post(URL, json={"items": items}, headers=bank_a.headers)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "batch_invalid"
    by_index = {d["index"]: d for d in error["details"]}
    assert by_index[0]["code"] == by_index[1]["code"] == "validation_error"
    assert [d["field"] for d in by_index[0]["details"]] == ["contract.amount"]
    assert [d["field"] for d in by_index[1]["details"]] == ["disbursement.date"]


def test_batch_over_the_limit(client: TestClient, bank_a: Caller, code: str, app: Any) -> None:
    limit = app.state.settings.batch_max_items
    app.state.settings.batch_max_items = 2
    try:
        r = client.post(URL, json={"items": _items(code, 1)}, headers=bank_a.headers)
    finally:
        app.state.settings.batch_max_items = limit
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "batch_too_large"


def test_batch_idempotent_replay(client: TestClient, bank_a: Caller, code: str, session: Session) -> None:
    h = {**bank_a.headers, "Idempotency-Key": "batch-1"}
    body = {"items": _items(code, 2)}
    first = client.post(URL, json=body, headers=h)
    second = client.post(URL, json=body, headers=h)
    assert first.status_code == 200
    assert second.content == first.content
    assert session.scalar(select(func.count()).select_from(Loan).where(Loan.bank_id == bank_a.id)) == 2
