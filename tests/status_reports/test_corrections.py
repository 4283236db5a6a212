"""Corrections of a closed month: a bank's amended report (a new version, the first still readable), and
an officer's reopening of a bank's month so that late events can be posted. Both audited."""

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from loanfund.status_reports import repository
from tests.factories import Caller, contract_payload, make_enterprise

pytestmark = pytest.mark.usefixtures("funded")

URL = "/api/v1/status-reports"
JUNE = "2021-06-30"


@pytest.fixture
def loans(client: TestClient, bank_a: Caller, session: Session) -> dict[str, int]:
    code = make_enterprise(session).credit_code
    ids = {}
    for ref in ("C1", "C2"):
        lid = client.post(
            "/api/v1/loans", json=contract_payload(code, ref, amount="200000"), headers=bank_a.headers
        ).json()["id"]
        r = client.post(
            f"/api/v1/loans/{lid}/disbursements",
            json={"bank_event_ref": f"{ref}-d", "date": "2021-03-01", "amount": "200000"},
            headers=bank_a.headers,
        )
        assert r.status_code == 201, r.text
        ids[ref] = lid
    return ids


def _lines(*lines: tuple[str, str, int]) -> list[dict[str, Any]]:
    return [{"bank_loan_ref": r, "outstanding_principal": o, "days_past_due": d} for r, o, d in lines]


def _june_report(client: TestClient, bank: Caller) -> dict[str, Any]:
    body = {"month_end": JUNE, "loans": _lines(("C1", "200000", 0), ("C2", "190000", 0))}
    r = client.post(URL, json=body, headers=bank.headers)
    assert r.status_code == 201, r.text
    first: dict[str, Any] = r.json()
    assert (first["version"], first["amends_report_id"], first["reason"]) == (1, None, None)
    return first


def _repay(client: TestClient, bank: Caller, loan_id: int, ref: str, day: str) -> Any:
    return client.post(
        f"/api/v1/loans/{loan_id}/repayments",
        json={"bank_event_ref": ref, "date": day, "principal": "10000"},
        headers=bank.headers,
    )


def test_an_amended_report_is_a_new_version_and_the_first_stays_readable(
    client: TestClient, session: Session, bank_a: Caller, analyst: Caller, loans: dict[str, int]
) -> None:
    first = _june_report(client, bank_a)
    assert [d["kind"] for d in first["discrepancies"]] == ["balance_mismatch"]  # C2 reported 190,000
    reason = "C2's balance was keyed wrong in June"
    body = {"month_end": JUNE, "reason": reason, "loans": _lines(("C1", "200000", 0), ("C2", "200000", 0))}
    r = client.post(f"{URL}/amendments", json=body, headers=bank_a.headers)
    assert r.status_code == 201, r.text
    second = r.json()
    assert (second["version"], second["amends_report_id"], second["reason"]) == (2, first["id"], reason)
    assert second["discrepancies"] == []
    # the first version is still there, as filed
    again = client.get(f"{URL}/{first['id']}", headers=bank_a.headers).json()
    assert (again["version"], len(again["discrepancies"])) == (1, 1)
    listed = client.get(URL, headers=bank_a.headers).json()["items"]
    assert [(i["month_end"], i["version"]) for i in listed] == [(JUNE, 1), (JUNE, 2)]
    # a third version amends the second
    body["reason"] = "C1 was 3 days past due at the end of June"
    third = client.post(f"{URL}/amendments", json=body, headers=bank_a.headers).json()
    assert (third["version"], third["amends_report_id"]) == (3, second["id"])
    rec = session.scalar(
        select(AuditRecord).where(
            AuditRecord.action == "status_report.amend", AuditRecord.entity_id == str(second["id"])
        )
    )
    assert rec is not None
    assert rec.reason == reason
    assert rec.after is not None
    assert (rec.after["version"], rec.after["amends_report_id"]) == (2, first["id"])


def test_the_discrepancies_report_shows_every_version(
    client: TestClient, bank_a: Caller, analyst: Caller, loans: dict[str, int]
) -> None:
    first = _june_report(client, bank_a)
    body = {"month_end": JUNE, "reason": "C1 and C2 again", "loans": _lines(("C2", "180000", 0))}
    second = client.post(f"{URL}/amendments", json=body, headers=bank_a.headers).json()
    found = client.get(
        "/api/v1/reports/status-discrepancies", params={"month_end": JUNE}, headers=analyst.headers
    ).json()["rows"]
    by_version = {
        (row["report_version"], row["report_id"], row["bank_loan_ref"], row["kind"]) for row in found
    }
    assert by_version == {
        (1, first["id"], "C2", "balance_mismatch"),
        (2, second["id"], "C1", "missing_from_report"),
        (2, second["id"], "C2", "balance_mismatch"),
    }
    csv = client.get(
        "/api/v1/reports/status-discrepancies", params={"format": "csv"}, headers=analyst.headers
    ).text
    assert "报告版本 / Report version" in csv.splitlines()[0]
    listed = client.get(f"{URL}/discrepancies", headers=analyst.headers).json()["items"]
    assert sorted(d["report_version"] for d in listed) == [1, 2, 2]


def test_an_amendment_needs_a_closed_month_and_a_reason(
    client: TestClient, bank_a: Caller, bank_b: Caller, loans: dict[str, int]
) -> None:
    _june_report(client, bank_a)
    body = {"month_end": JUNE, "loans": []}
    r = client.post(f"{URL}/amendments", json=body, headers=bank_a.headers)
    assert r.status_code == 422
    assert "reason" in {d["field"] for d in r.json()["error"]["details"]}
    r = client.post(
        f"{URL}/amendments",
        json={**body, "month_end": "2021-07-31", "reason": "early"},
        headers=bank_a.headers,
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "month_not_closed"
    r = client.post(f"{URL}/amendments", json={**body, "reason": "not ours"}, headers=bank_b.headers)
    assert r.status_code == 409  # bank B has closed no month
    assert r.json()["error"]["code"] == "month_not_closed"
    # the month's report itself cannot be filed twice: a closed month takes an amendment
    r = client.post(URL, json=body, headers=bank_a.headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "status_report_exists"


def test_an_officer_reopens_a_month_for_late_events_until_the_amended_report(
    client: TestClient,
    session: Session,
    bank_a: Caller,
    bank_b: Caller,
    officer: Caller,
    loans: dict[str, int],
) -> None:
    _june_report(client, bank_a)
    late = _repay(client, bank_a, loans["C1"], "LATE-1", "2021-06-20")
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "reporting_month_closed"

    reason = "the bank's June repayment file arrived after the report"
    reopen = {"bank_id": bank_a.id, "month_end": JUNE, "reason": reason}
    r = client.post(f"{URL}/reopenings", json=reopen, headers=officer.headers)
    assert r.status_code == 201, r.text
    reopening = r.json()
    assert (reopening["open"], reopening["reopened_by"], reopening["reason"]) == (True, officer.id, reason)
    assert repository.closed_through(session, bank_a.id) == date(2021, 5, 31)
    rec = session.scalar(select(AuditRecord).where(AuditRecord.action == "month.reopen"))
    assert rec is not None
    assert (rec.actor_id, rec.reason) == (officer.id, reason)

    # the late event is accepted now, and the bank sees its month reopened (bank B does not)
    assert _repay(client, bank_a, loans["C1"], "LATE-1", "2021-06-20").status_code == 201
    mine = client.get(f"{URL}/reopenings", params={"open": True}, headers=bank_a.headers).json()["items"]
    assert [m["id"] for m in mine] == [reopening["id"]]
    assert client.get(f"{URL}/reopenings", headers=bank_b.headers).json()["items"] == []
    # reopening it again while it is open is refused
    again = client.post(f"{URL}/reopenings", json=reopen, headers=officer.headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "month_already_reopened"

    # the amended report reflects the late repayment and closes the month again
    body = {
        "month_end": JUNE,
        "reason": "late repayment of C1",
        "loans": _lines(("C1", "190000", 0), ("C2", "200000", 0)),
    }
    amended = client.post(f"{URL}/amendments", json=body, headers=bank_a.headers)
    assert amended.status_code == 201, amended.text
    assert amended.json()["discrepancies"] == []
    closed = client.get(f"{URL}/reopenings", headers=bank_a.headers).json()["items"][0]
    assert (closed["open"], closed["closed_by_report_id"]) == (False, amended.json()["id"])
    assert repository.closed_through(session, bank_a.id) == date(2021, 6, 30)
    after = _repay(client, bank_a, loans["C1"], "LATE-2", "2021-06-25")
    assert after.status_code == 409
    assert after.json()["error"]["code"] == "reporting_month_closed"
    assert session.scalar(select(AuditRecord).where(AuditRecord.action == "month.close")) is not None


def test_a_reopened_month_does_not_hold_up_the_next_months_report(
    client: TestClient, bank_a: Caller, officer: Caller, loans: dict[str, int]
) -> None:
    _june_report(client, bank_a)
    reopen = {"bank_id": bank_a.id, "month_end": JUNE, "reason": "late file"}
    assert client.post(f"{URL}/reopenings", json=reopen, headers=officer.headers).status_code == 201
    july = {"month_end": "2021-07-31", "loans": _lines(("C1", "200000", 0), ("C2", "200000", 0))}
    r = client.post(URL, json=july, headers=bank_a.headers)
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1


def test_only_a_closed_month_of_a_known_bank_is_reopened(
    client: TestClient, bank_a: Caller, officer: Caller, loans: dict[str, int]
) -> None:
    _june_report(client, bank_a)
    body = {"bank_id": bank_a.id, "month_end": "2021-07-31", "reason": "not yet reported"}
    r = client.post(f"{URL}/reopenings", json=body, headers=officer.headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "month_not_closed"
    r = client.post(f"{URL}/reopenings", json={**body, "month_end": "2021-06-29"}, headers=officer.headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "not_month_end"
    r = client.post(f"{URL}/reopenings", json={**body, "bank_id": 999_999}, headers=officer.headers)
    assert r.status_code == 404
    r = client.post(f"{URL}/reopenings", json={**body, "month_end": JUNE}, headers=bank_a.headers)
    assert r.status_code == 403
