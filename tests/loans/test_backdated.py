"""Through the API: a backdated event yields the same loan as if the events had been posted in order."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import Caller, contract_payload, make_enterprise

pytestmark = pytest.mark.usefixtures("funded")

URL = "/api/v1/loans"
EVENTS = [
    ("disbursements", {"bank_event_ref": "d1", "date": "2021-03-01", "amount": "500000"}),
    ("repayments", {"bank_event_ref": "r1", "date": "2021-04-01", "principal": "100000", "interest": "1800"}),
    ("delinquency", {"bank_event_ref": "q1", "date": "2021-06-30", "days_past_due": 40}),
    ("repayments", {"bank_event_ref": "r2", "date": "2021-07-05", "principal": "50000"}),
]
KEYS = [
    "state",
    "disbursed",
    "principal_repaid",
    "interest_repaid",
    "outstanding_principal",
    "days_past_due",
    "npl_since",
]


def _run(client: TestClient, caller: Caller, code: str, ref: str, order: list[int]) -> dict[str, object]:
    lid = client.post(URL, json=contract_payload(code, ref, amount="500000"), headers=caller.headers).json()[
        "id"
    ]
    for i in order:
        kind, body = EVENTS[i]
        r = client.post(
            f"{URL}/{lid}/{kind}",
            json={**body, "bank_event_ref": f"{ref}-{body['bank_event_ref']}"},
            headers=caller.headers,
        )
        assert r.status_code == 201, r.text
    loan = client.get(f"{URL}/{lid}", headers=caller.headers).json()
    return {k: loan[k] for k in KEYS}


def test_backdated_equals_in_order(client: TestClient, bank_a: Caller, session: Session) -> None:
    code = make_enterprise(session).credit_code
    in_order = _run(client, bank_a, code, "IN", [0, 1, 2, 3])
    backdated = _run(client, bank_a, code, "BACK", [0, 2, 3, 1])
    assert in_order == backdated
    assert in_order["outstanding_principal"] == "350000.00"
    assert in_order["state"] == "overdue"


def test_backdated_repayment_cannot_overdraw_history(
    client: TestClient, bank_a: Caller, session: Session
) -> None:
    code = make_enterprise(session).credit_code
    h = bank_a.headers
    lid = client.post(URL, json=contract_payload(code, amount="100"), headers=h).json()["id"]
    client.post(
        f"{URL}/{lid}/disbursements",
        json={"bank_event_ref": "x1", "date": "2021-03-10", "amount": "100"},
        headers=h,
    )
    # a repayment dated before the disbursement is refused even though outstanding is 100 today
    r = client.post(
        f"{URL}/{lid}/repayments",
        json={"bank_event_ref": "x2", "date": "2021-03-05", "principal": "10"},
        headers=h,
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "repayment_before_disbursement"
