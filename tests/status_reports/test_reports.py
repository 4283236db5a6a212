from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import Caller, contract_payload, make_enterprise

pytestmark = pytest.mark.usefixtures("funded")

URL = "/api/v1/status-reports"


@pytest.fixture
def loans(client: TestClient, bank_a: Caller, session: Session) -> dict[str, int]:
    code = make_enterprise(session).credit_code
    ids = {}
    for ref in ("S1", "S2", "S3"):
        lid = client.post(
            "/api/v1/loans", json=contract_payload(code, ref, amount="200000"), headers=bank_a.headers
        ).json()["id"]
        client.post(
            f"/api/v1/loans/{lid}/disbursements",
            json={"bank_event_ref": f"{ref}-d", "date": "2021-03-01", "amount": "200000"},
            headers=bank_a.headers,
        )
        ids[ref] = lid
    return ids


def _report(lines: list[tuple[str, str, int]], month_end: str = "2021-06-30") -> dict[str, Any]:
    return {
        "month_end": month_end,
        "loans": [{"bank_loan_ref": r, "outstanding_principal": o, "days_past_due": d} for r, o, d in lines],
    }


def test_report_updates_delinquency_and_lists_mismatches(
    client: TestClient, bank_a: Caller, analyst: Caller, loans: dict[str, int]
) -> None:
    body = _report([("S1", "200000.00", 0), ("S2", "150000.00", 45), ("GHOST", "10.00", 0)])
    r = client.post(URL, json=body, headers=bank_a.headers)
    assert r.status_code == 201, r.text
    report = r.json()
    kinds = {(d["bank_loan_ref"], d["kind"]) for d in report["discrepancies"]}
    assert kinds == {("S2", "balance_mismatch"), ("GHOST", "unknown_loan"), ("S3", "missing_from_report")}
    s2 = next(d for d in report["discrepancies"] if d["bank_loan_ref"] == "S2")
    assert (s2["reported_outstanding"], s2["derived_outstanding"]) == ("150000.00", "200000.00")
    loan = client.get(f"/api/v1/loans/{loans['S2']}", headers=bank_a.headers).json()
    assert (loan["state"], loan["days_past_due"]) == ("overdue", 45)
    assert loan["events"][-1]["source"] == "status_report"
    listed = client.get(
        f"{URL}/discrepancies", params={"bank_id": bank_a.id}, headers=analyst.headers
    ).json()["items"]
    assert len(listed) == 3


def test_report_closes_the_month(client: TestClient, bank_a: Caller, loans: dict[str, int]) -> None:
    client.post(
        URL,
        json=_report([("S1", "200000", 0), ("S2", "200000", 0), ("S3", "200000", 0)]),
        headers=bank_a.headers,
    )
    r = client.post(
        f"/api/v1/loans/{loans['S1']}/repayments",
        json={"bank_event_ref": "late", "date": "2021-06-15", "principal": "1"},
        headers=bank_a.headers,
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "reporting_month_closed"
    r = client.post(
        f"/api/v1/loans/{loans['S1']}/repayments",
        json={"bank_event_ref": "next", "date": "2021-07-01", "principal": "1"},
        headers=bank_a.headers,
    )
    assert r.status_code == 201
    again = client.post(URL, json=_report([]), headers=bank_a.headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "status_report_exists"
    older = client.post(URL, json=_report([], "2021-05-31"), headers=bank_a.headers)
    assert older.status_code == 409
    assert older.json()["error"]["code"] == "reporting_month_closed"


def test_report_validation(client: TestClient, bank_a: Caller, loans: dict[str, int]) -> None:
    r = client.post(URL, json=_report([], "2021-06-29"), headers=bank_a.headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "not_month_end"
    r = client.post(URL, json=_report([("S1", "1", 0), ("S1", "1", 0)]), headers=bank_a.headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "status_report_duplicate_loan"
    r = client.post(URL, json=_report([], "2099-12-31"), headers=bank_a.headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "month_not_over"


def test_reports_are_scoped(
    client: TestClient, bank_a: Caller, bank_b: Caller, loans: dict[str, int]
) -> None:
    rid = client.post(URL, json=_report([("S1", "200000", 0)]), headers=bank_a.headers).json()["id"]
    assert client.get(f"{URL}/{rid}", headers=bank_b.headers).status_code == 404
    assert client.get(URL, headers=bank_b.headers).json()["items"] == []
    assert client.get(f"{URL}/discrepancies", headers=bank_b.headers).status_code == 403
    assert client.get(f"{URL}/{rid}", headers=bank_a.headers).status_code == 200
