"""Compensation claims end to end through the API, and the fund's ledger behind them."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from loanfund.claims.models import Recovery
from loanfund.fund import ledger
from loanfund.fund import service as fund_service
from loanfund.fund.models import LedgerTransaction
from tests.conftest import NplLoan
from tests.factories import Caller, staff_caller

URL = "/api/v1/claims"


def _post(
    client: TestClient, path: str, caller: Caller, body: dict[str, Any] | None = None, status: int = 200
) -> dict[str, Any]:
    r = client.post(path, json=body or {}, headers=caller.headers)
    assert r.status_code == status, r.text
    result: dict[str, Any] = r.json()
    return result


@pytest.mark.usefixtures("fund_10m", "lenient_breakers")
def test_domain_scenario(
    client: TestClient,
    session: Session,
    bank_a: Caller,
    officer: Caller,
    approver: Caller,
    analyst: Caller,
    npl_loan: NplLoan,
    today: date,
) -> None:
    loan = npl_loan(bank_a, "3000000")
    claim = _post(client, URL, bank_a, {"loan_id": loan["id"], "principal_at_default": "3000000"}, 201)
    assert (claim["state"], claim["claimed"]) == ("submitted", "2400000.00")
    claim = _post(client, f"{URL}/{claim['id']}/approve", officer)
    assert (claim["state"], claim["approved"], claim["reserved"]) == ("approved", "2400000.00", "2400000.00")
    position = client.get("/api/v1/fund/position", headers=analyst.headers).json()
    assert (position["fund_balance"] if "fund_balance" in position else position["balance"]) == "10000000.00"
    claim = _post(client, f"{URL}/{claim['id']}/pay", approver)
    assert (claim["state"], claim["paid"]) == ("paid", "2400000.00")
    assert client.get(f"/api/v1/loans/{loan['id']}", headers=bank_a.headers).json()["state"] == "compensated"
    assert fund_service.fund_position(session).balance_fen == 760_000_000

    claim = _post(
        client,
        f"{URL}/{claim['id']}/recoveries",
        bank_a,
        {"bank_ref": "REC-1", "date": str(today), "gross": "1100000", "costs": "100000"},
        201,
    )
    assert claim["receivable"] == "800000.00"
    claim = _post(
        client,
        f"{URL}/{claim['id']}/remittances",
        bank_a,
        {"bank_ref": "REM-1", "date": str(today), "amount": "800000"},
        201,
    )
    assert claim["receivable"] == "0.00"
    position = fund_service.fund_position(session)
    assert position.balance_fen == 840_000_000
    assert position.fund_size_fen == 1_000_000_000
    result = ledger.reconcile(session)
    assert result.ok
    claim = _post(client, f"{URL}/{claim['id']}/close-collection", bank_a, {"date": str(today)})
    assert claim["collection_closed_on"] == str(today)
    assert client.get(f"/api/v1/loans/{loan['id']}", headers=bank_a.headers).json()["state"] == "written_off"


@pytest.mark.usefixtures("fund_10m", "lenient_breakers")
def test_reviewer_cannot_pay(
    client: TestClient, session: Session, settings: Any, bank_a: Caller, approver: Caller, npl_loan: NplLoan
) -> None:
    loan = npl_loan(bank_a, "100000")
    cid = _post(client, URL, bank_a, {"loan_id": loan["id"], "principal_at_default": "100000"}, 201)["id"]
    _post(client, f"{URL}/{cid}/approve", approver)  # an approver may review…
    r = client.post(f"{URL}/{cid}/pay", headers=approver.headers)  # …but not pay what they reviewed
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "maker_checker"
    other = staff_caller(session, settings, "approver")
    assert _post(client, f"{URL}/{cid}/pay", other)["state"] == "paid"
    again = client.post(f"{URL}/{cid}/pay", headers=other.headers)
    assert again.status_code == 409


@pytest.mark.usefixtures("fund_10m", "lenient_breakers")
def test_reduced_approval_and_rejection_release(
    client: TestClient, session: Session, bank_a: Caller, officer: Caller, npl_loan: NplLoan
) -> None:
    loan = npl_loan(bank_a, "1000000")
    cid = _post(client, URL, bank_a, {"loan_id": loan["id"], "principal_at_default": "1000000"}, 201)["id"]
    r = client.post(f"{URL}/{cid}/approve", json={"amount": "700000"}, headers=officer.headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "reduction_reason_required"
    r = client.post(f"{URL}/{cid}/approve", json={"amount": "800000.01"}, headers=officer.headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "claim_amount_exceeds_share"
    assert r.json()["error"]["message"] == "At most the fund's share, 800,000.00 yuan, can be approved"
    claim = _post(
        client, f"{URL}/{cid}/approve", officer, {"amount": "700000", "reason": "documents incomplete"}
    )
    assert (claim["approved"], claim["reduction_reason"]) == ("700000.00", "documents incomplete")
    assert fund_service.fund_position(session).reserved_fen == 70_000_000
    claim = _post(client, f"{URL}/{cid}/reject", officer, {"reason": "fraud found"})
    assert claim["state"] == "rejected"
    assert fund_service.fund_position(session).reserved_fen == 0
    # a rejected claim may be followed by a new one
    assert (
        _post(client, URL, bank_a, {"loan_id": loan["id"], "principal_at_default": "1000000"}, 201)["state"]
        == "submitted"
    )
    actions = session.scalars(select(AuditRecord.action).where(AuditRecord.entity_type == "claim")).all()
    assert actions == ["claim.file", "claim.approve", "claim.reject", "claim.file"]


@pytest.mark.usefixtures("fund_10m", "lenient_breakers")
def test_filing_rules(client: TestClient, bank_a: Caller, bank_b: Caller, npl_loan: NplLoan) -> None:
    overdue = npl_loan(bank_a, "100000", dpd=30)
    r = client.post(
        URL, json={"loan_id": overdue["id"], "principal_at_default": "100000"}, headers=bank_a.headers
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "loan_not_non_performing"
    stale = npl_loan(bank_a, "100000", dpd=300, age=330)  # non-performing since 210 days ago: closed
    r = client.post(
        URL, json={"loan_id": stale["id"], "principal_at_default": "100000"}, headers=bank_a.headers
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "claim_window_expired"
    loan = npl_loan(bank_a, "100000")
    r = client.post(
        URL, json={"loan_id": loan["id"], "principal_at_default": "100000.01"}, headers=bank_a.headers
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "claim_principal_exceeds_outstanding"
    assert r.json()["error"]["message"] == "The loan's outstanding principal is 100,000.00 yuan"
    r = client.post(
        URL, json={"loan_id": loan["id"], "principal_at_default": "100000"}, headers=bank_b.headers
    )
    assert r.status_code == 404
    cid = _post(client, URL, bank_a, {"loan_id": loan["id"], "principal_at_default": "100000"}, 201)["id"]
    r = client.post(
        URL, json={"loan_id": loan["id"], "principal_at_default": "100000"}, headers=bank_a.headers
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "claim_exists"
    assert client.get(f"{URL}/{cid}", headers=bank_b.headers).status_code == 404
    assert [c["id"] for c in client.get(URL, headers=bank_b.headers).json()["items"]] == []
    r = client.post(f"{URL}/{cid}/approve", json={}, headers=bank_a.headers)
    assert r.status_code == 403


@pytest.mark.usefixtures("lenient_breakers")
def test_unfunded_approval_then_fund_insufficient(
    client: TestClient, session: Session, bank_a: Caller, officer: Caller, approver: Caller, npl_loan: NplLoan
) -> None:
    from tests.factories import contribute

    contribute(session, 1_000_000)  # covers 10,000,000 of loans; claims of 800,000 each
    loans = [npl_loan(bank_a, "1000000") for _ in range(2)]
    ids = [
        _post(client, URL, bank_a, {"loan_id": loan["id"], "principal_at_default": "1000000"}, 201)["id"]
        for loan in loans
    ]
    first = _post(client, f"{URL}/{ids[0]}/approve", officer)
    second = _post(client, f"{URL}/{ids[1]}/approve", officer)
    assert (first["reserved"], second["reserved"]) == ("800000.00", "0.00")  # only 1,000,000 in the fund
    # the second is approved without funds: shown, and listed, before an approver tries to pay it
    assert (first["funded"], first["shortfall"]) == (True, "0.00")
    assert (second["funded"], second["shortfall"]) == (False, "800000.00")
    unfunded = client.get(URL, params={"funded": "false"}, headers=officer.headers).json()["items"]
    assert [c["id"] for c in unfunded] == [ids[1]]
    funded = client.get(URL, params={"funded": "true"}, headers=officer.headers).json()["items"]
    assert [c["id"] for c in funded] == [ids[0]]
    assert _post(client, f"{URL}/{ids[0]}/pay", approver)["state"] == "paid"
    r = client.post(f"{URL}/{ids[1]}/pay", headers=approver.headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "fund_insufficient"
    contribute(session, 1_000_000)
    assert _post(client, f"{URL}/{ids[1]}/pay", approver)["state"] == "paid"
    assert fund_service.fund_position(session).balance_fen == 40_000_000


@pytest.mark.usefixtures("fund_10m", "lenient_breakers")
def test_an_early_default_is_approved_only_with_a_review_note(
    client: TestClient, session: Session, bank_a: Caller, officer: Caller, npl_loan: NplLoan
) -> None:
    """Non-performing 100 days after its first disbursement (within six months): an early default, on the
    loan, its claim and the claims register; the approval needs the reviewer's note."""
    early = npl_loan(bank_a, "100000", age=100)
    later = npl_loan(bank_a, "100000")  # 200 days old: not early
    assert (early["early_default"], later["early_default"]) == (True, False)
    claim = _post(client, URL, bank_a, {"loan_id": early["id"], "principal_at_default": "100000"}, 201)
    assert claim["early_default"] is True
    r = client.post(f"{URL}/{claim['id']}/approve", json={}, headers=officer.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "early_default_review_required")
    assert r.json()["error"]["details"][0]["field"] == "review_note"
    assert client.get(f"{URL}/{claim['id']}", headers=officer.headers).json()["state"] == "submitted"
    note = "Loan file and post-lending visits checked; no sign of fraud"
    approved = _post(client, f"{URL}/{claim['id']}/approve", officer, {"review_note": note})
    assert (approved["state"], approved["review_note"]) == ("approved", note)
    other = _post(client, URL, bank_a, {"loan_id": later["id"], "principal_at_default": "100000"}, 201)
    assert other["early_default"] is False
    assert _post(client, f"{URL}/{other['id']}/approve", officer)["state"] == "approved"
    register = client.get("/api/v1/reports/claims", headers=officer.headers).json()["rows"]
    flags = {row["claim_id"]: row["early_default"] for row in register}
    assert flags == {claim["id"]: True, other["id"]: False}
    audit = session.scalars(
        select(AuditRecord).where(
            AuditRecord.action == "claim.approve", AuditRecord.entity_id == str(claim["id"])
        )
    ).one()
    assert audit.after is not None
    assert audit.after["review_note"] == note


@pytest.mark.usefixtures("fund_10m", "lenient_breakers")
def test_recoveries_and_remittances_are_dated_between_the_payout_and_today(
    client: TestClient,
    session: Session,
    bank_a: Caller,
    officer: Caller,
    approver: Caller,
    npl_loan: NplLoan,
    today: date,
) -> None:
    loan = npl_loan(bank_a, "1000000")
    cid = _post(client, URL, bank_a, {"loan_id": loan["id"], "principal_at_default": "1000000"}, 201)["id"]
    _post(client, f"{URL}/{cid}/approve", officer)
    assert _post(client, f"{URL}/{cid}/pay", approver)["paid_on"] == str(today)
    _post(
        client,
        f"{URL}/{cid}/recoveries",
        bank_a,
        {"bank_ref": "R-OK", "date": str(today), "gross": "100"},
        201,
    )

    def counts() -> tuple[int, int, int]:
        return (
            session.scalar(select(func.count()).select_from(Recovery)) or 0,
            session.scalar(select(func.count()).select_from(LedgerTransaction)) or 0,
            session.scalar(select(func.count()).select_from(AuditRecord)) or 0,
        )

    before = counts()
    cases = [
        ("recoveries", {"bank_ref": "R-1", "gross": "100"}),
        ("remittances", {"bank_ref": "R-2", "amount": "10"}),
        ("close-collection", {}),
    ]
    for path, body in cases:
        for day, code in (
            (today + timedelta(days=1), "date_in_future"),
            (today - timedelta(days=1), "date_before_payout"),
        ):
            r = client.post(f"{URL}/{cid}/{path}", json={**body, "date": str(day)}, headers=bank_a.headers)
            assert r.status_code == 422, (path, day, r.text)
            error = r.json()["error"]
            assert error["code"] == code
            assert error["details"][0]["field"] == "date"
    assert counts() == before  # nothing written
    claim = client.get(f"{URL}/{cid}", headers=bank_a.headers).json()
    assert [r["bank_ref"] for r in claim["recoveries"]] == ["R-OK"]
    assert claim["collection_closed_on"] is None
