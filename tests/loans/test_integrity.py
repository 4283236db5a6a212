"""The integrity rules of a loan write, each run through a single request and through a batch — the one
write path — and each refused with its own code, naming the field, with nothing written."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from loanfund.core.config import Settings
from loanfund.loans.models import Loan, LoanEvent
from tests.factories import (
    Caller,
    assert_loans_replay_and_aggregates_rebuild,
    contract_payload,
    make_enterprise,
    register_loan,
)

pytestmark = pytest.mark.usefixtures("funded")
URL = "/api/v1/loans"


@pytest.fixture(params=["single", "batch"])
def path(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _counts(session: Session) -> tuple[int | None, ...]:
    return tuple(session.scalar(select(func.count()).select_from(t)) for t in (Loan, LoanEvent, AuditRecord))


def _disbursed_loan(client: TestClient, bank: Caller, session: Session, ref: str, start: date) -> int:
    loan_id = register_loan(client, bank, make_enterprise(session).credit_code, ref, start)
    d = {"bank_event_ref": f"{ref}-d", "date": start.isoformat(), "amount": "100000"}
    r = client.post(f"{URL}/{loan_id}/disbursements", json=d, headers=bank.headers)
    assert r.status_code == 201, r.text
    return loan_id


def _delinquency(
    client: TestClient, bank: Caller, path: str, loan_id: int, ref: str, day: date, dpd: Any
) -> tuple[int, dict[str, Any]]:
    """A delinquency report through `path`: (status, the error of the item or the loan after it)."""
    body = {"bank_event_ref": f"{ref}-q{day}", "date": day.isoformat(), "days_past_due": dpd}
    if path == "single":
        r = client.post(f"{URL}/{loan_id}/delinquency", json=body, headers=bank.headers)
        payload: dict[str, Any] = r.json()
        return r.status_code, payload.get("error") or payload["loan"]
    item = {"type": "delinquency", "bank_loan_ref": ref, **body}
    r = client.post(f"{URL}/batch", json={"items": [item]}, headers=bank.headers)
    if r.status_code != 200:
        error = r.json()["error"]
        assert error["code"] == "batch_invalid"
        (refusal,) = error["details"]
        assert refusal["index"] == 0
        return r.status_code, refusal
    return 200, client.get(f"{URL}/{loan_id}", headers=bank.headers).json()


def test_days_past_due_cannot_exceed_the_loan_s_age(
    client: TestClient, bank_a: Caller, session: Session, today: date, path: str
) -> None:
    """The door this rule closes: a loan disbursed today reported 95 days past due, non-performing at once
    and claimable the same day."""
    loan_id = _disbursed_loan(client, bank_a, session, "AGE-1", today)
    before = _counts(session)
    status, refusal = _delinquency(client, bank_a, path, loan_id, "AGE-1", today, 95)
    assert status == 422
    assert refusal["code"] == "days_past_due_exceeds_loan_age"
    assert refusal["details"][0]["field"] == "days_past_due"
    assert _counts(session) == before
    loan = client.get(f"{URL}/{loan_id}", headers=bank_a.headers).json()
    assert (loan["state"], loan["npl_since"], loan["days_past_due"]) == ("active", None, 0)
    # no claim can rest on it
    r = client.post(
        "/api/v1/claims", json={"loan_id": loan_id, "principal_at_default": "100000"}, headers=bank_a.headers
    )
    assert (r.status_code, r.json()["error"]["code"]) == (409, "loan_not_non_performing")


def test_the_earliest_non_performing_date_is_first_disbursement_plus_npl_days(
    client: TestClient, bank_a: Caller, session: Session, settings: Settings, today: date, path: str
) -> None:
    start = today - timedelta(days=100)
    loan_id = _disbursed_loan(client, bank_a, session, "AGE-2", start)
    status, _ = _delinquency(client, bank_a, path, loan_id, "AGE-2", today, 101)
    assert status == 422
    status, loan = _delinquency(client, bank_a, path, loan_id, "AGE-2", today, 100)
    assert status in (200, 201)
    assert loan["state"] == "non_performing"
    assert date.fromisoformat(loan["npl_since"]) == start + timedelta(days=90)
    assert_loans_replay_and_aggregates_rebuild(session, settings)


def test_a_backdated_event_is_bounded_by_the_age_on_its_own_date(
    client: TestClient, bank_a: Caller, session: Session, today: date, path: str
) -> None:
    """A report dated before a later one replays the loan: the bound is the age on the report's date."""
    start = today - timedelta(days=200)
    loan_id = _disbursed_loan(client, bank_a, session, "AGE-3", start)
    status, _ = _delinquency(client, bank_a, path, loan_id, "AGE-3", today, 0)
    assert status in (200, 201)
    status, refusal = _delinquency(client, bank_a, path, loan_id, "AGE-3", start + timedelta(days=30), 45)
    assert (status, refusal["code"]) == (422, "days_past_due_exceeds_loan_age")


@pytest.mark.parametrize(("age", "early"), [(100, True), (200, False)])
def test_early_defaults_are_flagged_on_the_loan(
    client: TestClient,
    bank_a: Caller,
    session: Session,
    settings: Settings,
    today: date,
    path: str,
    age: int,
    early: bool,
) -> None:
    """Non-performing within six months (the setting) of the first disbursement: an early default. The
    flag stays once set, even if the loan is cured."""
    start = today - timedelta(days=age)
    ref = f"EARLY-{age}"
    loan_id = _disbursed_loan(client, bank_a, session, ref, start)
    status, loan = _delinquency(client, bank_a, path, loan_id, ref, today - timedelta(days=2), 95)
    assert status in (200, 201), loan
    assert (loan["state"], loan["early_default"]) == ("non_performing", early)
    status, loan = _delinquency(client, bank_a, path, loan_id, ref, today, 0)
    assert (loan["state"], loan["early_default"]) == ("active", early)
    assert_loans_replay_and_aggregates_rebuild(session, settings)


def _contract(
    client: TestClient, bank: Caller, path: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    if path == "single":
        r = client.post(URL, json=body, headers=bank.headers)
        return r.status_code, r.json().get("error") or r.json()
    r = client.post(f"{URL}/batch", json={"items": [{"type": "contract", **body}]}, headers=bank.headers)
    if r.status_code == 200:
        return 201, {}
    (refusal,) = r.json()["error"]["details"]
    assert refusal["index"] == 0
    return r.status_code, refusal


def test_contracts_without_an_application_need_the_bank_s_permission(
    client: TestClient, bank_a: Caller, officer: Caller, session: Session, path: str
) -> None:
    bank_id = bank_a.id
    code = make_enterprise(session).credit_code
    r = client.patch(
        f"/api/v1/banks/{bank_id}",
        json={"allow_contracts_without_application": False},
        headers=officer.headers,
    )
    assert (r.status_code, r.json()["allow_contracts_without_application"]) == (200, False)
    before = _counts(session)
    status, refusal = _contract(client, bank_a, path, contract_payload(code, "NOAPP-1", amount="100000"))
    assert (status, refusal["code"]) == ((409 if path == "single" else 422), "application_required")
    assert refusal["details"][0]["field"] == "application_no"
    assert _counts(session)[:2] == before[:2]
    audit = client.get(
        "/api/v1/audit", params={"entity_type": "bank", "action": "bank.update"}, headers=officer.headers
    ).json()["items"][0]
    assert audit["after"]["allow_contracts_without_application"] is False
    assert audit["before"]["allow_contracts_without_application"] is True


def test_a_contract_without_an_application_is_bounded_by_the_enterprise_s_own_grade(
    client: TestClient, bank_a: Caller, session: Session, path: str
) -> None:
    """Not by the highest line: a grade-E enterprise's historical contract stays within E's line."""
    graded_e = make_enterprise(session, grade="E").credit_code
    ungraded = make_enterprise(session, grade=None).credit_code
    # 2021 contracts: the 2017 table is in force (E: 400,000)
    status, refusal = _contract(
        client, bank_a, path, contract_payload(graded_e, "GRADE-1", amount="400000.01")
    )
    assert (status, refusal["code"]) == (422, "amount_exceeds_credit_line")
    assert refusal["details"][0]["field"] == "amount"
    assert "grade E" in refusal["message"]
    assert "400,000.00 yuan" in refusal["message"]
    status, _ = _contract(client, bank_a, path, contract_payload(graded_e, "GRADE-2", amount="400000"))
    assert status == 201
    status, refusal = _contract(client, bank_a, path, contract_payload(ungraded, "GRADE-3", amount="1000"))
    assert (status, refusal["code"]) == (422, "enterprise_not_graded")
    assert refusal["details"][0]["field"] == "credit_code"


def test_amounts_in_messages_are_in_yuan(
    client: TestClient, bank_a: Caller, session: Session, today: date, path: str
) -> None:
    start = today - timedelta(days=30)
    loan_id = _disbursed_loan(client, bank_a, session, "YUAN-1", start)
    body = {"bank_event_ref": "YUAN-1-r", "date": today.isoformat(), "principal": "100000.01"}
    if path == "single":
        r = client.post(f"{URL}/{loan_id}/repayments", json=body, headers=bank_a.headers)
        message = r.json()["error"]["message"]
    else:
        item = {"type": "repayment", "bank_loan_ref": "YUAN-1", **body}
        r = client.post(f"{URL}/batch", json={"items": [item]}, headers=bank_a.headers)
        message = r.json()["error"]["details"][0]["message"]
    assert "100,000.01 yuan" in message
    assert "100,000.00 yuan" in message
    assert "fen" not in message


def test_a_batch_reports_malformed_and_refused_items_together(
    client: TestClient, bank_a: Caller, session: Session, today: date
) -> None:
    code = make_enterprise(session).credit_code
    start = today - timedelta(days=10)
    items: list[dict[str, Any]] = [
        {
            "type": "contract",
            **contract_payload(
                code,
                "MIX-1",
                amount="100000",
                start_date=start.isoformat(),
                maturity_date=(start + timedelta(days=300)).isoformat(),
            ),
        },
        {"type": "disbursement", "bank_loan_ref": "MIX-1", "bank_event_ref": "m1", "date": "2021-13-40"},
        {
            "type": "disbursement",
            "bank_loan_ref": "MIX-1",
            "bank_event_ref": "m2",
            "date": start.isoformat(),
            "amount": "100000",
        },
        {
            "type": "delinquency",
            "bank_loan_ref": "MIX-1",
            "bank_event_ref": "m3",
            "date": today.isoformat(),
            "days_past_due": 95,
        },
        {
            "type": "repayment",
            "bank_loan_ref": "MIX-1",
            "bank_event_ref": "m4",
            "date": today.isoformat(),
            "principal": "not money",
        },
        {"type": "refund"},
    ]
    before = _counts(session)
    r = client.post(f"{URL}/batch", json={"items": items}, headers=bank_a.headers)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "batch_invalid"
    assert "4 of 6 items" in error["message"]
    refusals = {d["index"]: d for d in error["details"]}
    assert sorted(refusals) == [1, 3, 4, 5]
    assert all(isinstance(i, int) for i in refusals)
    assert refusals[1]["code"] == refusals[4]["code"] == refusals[5]["code"] == "validation_error"
    assert {d["field"] for d in refusals[1]["details"]} >= {"disbursement.date", "disbursement.amount"}
    assert refusals[3]["code"] == "days_past_due_exceeds_loan_age"
    assert _counts(session) == before
