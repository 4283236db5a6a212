"""Applying, the status token, eligibility and the evaluation shown to the applicant."""

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.applications.models import Application
from loanfund.audit.models import AuditRecord
from loanfund.core.config import Settings
from loanfund.core.money import to_fen, yuan_str
from loanfund.core.security import hash_secret
from loanfund.rates.service import credit_line_for
from tests.conftest import TEST_SECRET
from tests.factories import (
    TEST_ACTOR,
    WEAK_INDICATORS,
    Caller,
    application_payload,
    credit_code,
    make_enterprise,
)

URL = "/api/v1/applications"
SetDay = Callable[[date], None]


def status_of(client: TestClient, number: str, token: str) -> Any:
    return client.get(f"{URL}/{number}", headers={"Authorization": f"Bearer {token}"})


def test_eligible_application_is_evaluated_at_once(
    client: TestClient, session: Session, bank_a: Caller, settings: Settings
) -> None:
    ent = make_enterprise(session)
    r = client.post(URL, json=application_payload(ent.credit_code, "BANK_A"))
    assert r.status_code == 201, r.text
    body = r.json()
    today = date.today()
    assert body["application_no"].startswith("KV")
    assert body["status"] == "pending_bank"
    assert body["ineligible_reason"] is None
    assert body["status_token"].startswith("lft_")
    assert body["enterprise_name"] == ent.name
    assert body["bank_code"] == "BANK_A"
    assert body["requested_amount"] == "1000000.00"
    assert body["loan"] is None
    assert body["decision"] is None
    ev = body["evaluation"]
    parts = ev["contributions"]
    assert [p["indicator"] for p in parts] == list(settings.evaluation_weights)
    assert Decimal(ev["score"]) == sum(Decimal(p["points"]) for p in parts)
    for p in parts:
        assert Decimal(p["points"]) <= Decimal(p["cap"])
        assert Decimal(p["cap"]) == settings.evaluation_weights[p["indicator"]].cap
    assert ev["grade"] == ev["computed_grade"] == "A"
    # the business date is Asia/Shanghai's; the table in force that day gives the line
    day = date.fromisoformat(body["application_date"])
    assert abs((day - today).days) <= 1
    assert ev["credit_line"] == yuan_str(credit_line_for(session, "A", day))
    assert ev["overridden"] is False


def test_application_numbers_are_unique_and_carry_the_year(
    client: TestClient, session: Session, bank_a: Caller, on_day: SetDay
) -> None:
    on_day(date(2021, 5, 10))
    ent = make_enterprise(session)
    numbers = {
        client.post(URL, json=application_payload(ent.credit_code, "BANK_A")).json()["application_no"]
        for _ in range(3)
    }
    assert len(numbers) == 3
    assert all(n.startswith("KV2021") for n in numbers)


@pytest.mark.parametrize(
    ("day", "line"), [(date(2021, 6, 1), "3000000.00"), (date(2023, 6, 1), "5000000.00")]
)
def test_credit_line_comes_from_the_table_in_force_on_the_application_date(
    client: TestClient, session: Session, bank_a: Caller, on_day: SetDay, day: date, line: str
) -> None:
    on_day(day)
    ent = make_enterprise(session)
    body = client.post(URL, json=application_payload(ent.credit_code, "BANK_A")).json()
    assert body["application_date"] == day.isoformat()
    assert body["evaluation"]["grade"] == "A"
    assert body["evaluation"]["credit_line"] == line


def test_status_token_reads_that_application_alone(
    client: TestClient, session: Session, bank_a: Caller, settings: Settings
) -> None:
    e1, e2 = make_enterprise(session), make_enterprise(session)
    first = client.post(URL, json=application_payload(e1.credit_code, "BANK_A")).json()
    second = client.post(URL, json=application_payload(e2.credit_code, "BANK_A")).json()

    r = status_of(client, first["application_no"], first["status_token"])
    assert r.status_code == 200
    shown = r.json()
    assert "status_token" not in shown
    assert shown == {k: v for k, v in first.items() if k != "status_token"}

    wrong_token = status_of(client, first["application_no"], second["status_token"])
    unknown_no = status_of(client, "KV2099999999", first["status_token"])
    garbage = status_of(client, first["application_no"], "lft_guess")
    assert wrong_token.status_code == unknown_no.status_code == garbage.status_code == 404
    assert wrong_token.json() == unknown_no.json() == garbage.json()
    assert wrong_token.json()["error"]["code"] == "application_not_found"

    missing = client.get(f"{URL}/{first['application_no']}")
    assert missing.status_code == 401
    # a bank or staff key is not a status token
    assert client.get(f"{URL}/{first['application_no']}", headers=bank_a.headers).status_code == 404

    # only the keyed hash is stored, and the token appears nowhere else
    row = session.scalar(select(Application).where(Application.application_no == first["application_no"]))
    assert row is not None
    assert row.status_token_hash == hash_secret(TEST_SECRET, first["status_token"])
    assert first["status_token"] not in row.status_token_hash
    audit = session.scalars(select(AuditRecord).where(AuditRecord.entity_id == first["application_no"])).all()
    assert audit
    assert all(first["status_token"] not in str(a.after) for a in audit)


def test_unknown_enterprise_is_taken_but_ineligible(client: TestClient, bank_a: Caller) -> None:
    r = client.post(URL, json=application_payload(credit_code(), "BANK_A"))
    assert r.status_code == 201
    body = r.json()
    assert body["status"] == "ineligible"
    assert body["ineligible_reason"] == "enterprise_not_in_registry"
    assert body["evaluation"] is None
    assert body["enterprise_name"] is None
    assert status_of(client, body["application_no"], body["status_token"]).json()["status"] == "ineligible"


def test_unregistered_enterprise_is_ineligible(client: TestClient, session: Session, bank_a: Caller) -> None:
    ent = make_enterprise(session, tech_reg_no=None, tech_reg_date=None)
    body = client.post(URL, json=application_payload(ent.credit_code, "BANK_A")).json()
    assert body["status"] == "ineligible"
    assert body["ineligible_reason"] == "enterprise_not_registered_tech"
    assert body["evaluation"] is None


def test_low_score_is_ineligible_with_the_breakdown(
    client: TestClient, session: Session, bank_a: Caller, settings: Settings
) -> None:
    ent = make_enterprise(session)
    body = client.post(
        URL, json=application_payload(ent.credit_code, "BANK_A", indicators=WEAK_INDICATORS)
    ).json()
    assert body["status"] == "ineligible"
    assert body["ineligible_reason"] == "score_below_threshold"
    ev = body["evaluation"]
    assert Decimal(ev["score"]) < min(settings.grade_bands.values())
    assert ev["grade"] is None
    assert ev["credit_line"] is None
    assert len(ev["contributions"]) == len(settings.evaluation_weights)


def test_audit_records_the_submission(client: TestClient, session: Session, bank_a: Caller) -> None:
    ent = make_enterprise(session)
    body = client.post(URL, json=application_payload(ent.credit_code, "BANK_A")).json()
    rec = session.scalar(select(AuditRecord).where(AuditRecord.action == "application.submit"))
    assert rec is not None
    assert rec.entity_id == body["application_no"]
    assert rec.actor_kind == "enterprise"
    assert rec.actor_id == ent.id
    assert rec.after is not None
    assert rec.after["status"] == "pending_bank"
    assert rec.after["credit_line_fen"] == to_fen(body["evaluation"]["credit_line"])


def test_unknown_or_suspended_bank_is_refused(client: TestClient, session: Session, bank_a: Caller) -> None:
    from loanfund.banks import repository as bank_repository
    from loanfund.banks import service as bank_service
    from loanfund.banks.models import BankStatus

    ent = make_enterprise(session)
    r = client.post(URL, json=application_payload(ent.credit_code, "NO_SUCH_BANK"))
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "bank_unknown"
    assert r.json()["error"]["details"][0]["field"] == "bank_code"

    bank = bank_repository.by_code(session, "BANK_A")
    assert bank is not None
    bank_service.set_status(session, TEST_ACTOR, bank, BankStatus.suspended, "review of its lending")
    session.commit()
    r = client.post(URL, json=application_payload(ent.credit_code, "BANK_A"))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "bank_suspended"


def _field_of(r: Any) -> set[str]:
    return {d["field"] for d in r.json()["error"]["details"]}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"term_months": 0}, "term_months"),
        ({"term_months": "twelve"}, "term_months"),
        ({"requested_amount": "-5"}, "requested_amount"),
        ({"requested_amount": "0"}, "requested_amount"),
        ({"requested_amount": "10.001"}, "requested_amount"),
        ({"credit_code": "91500114MA0000001O"}, "credit_code"),
        ({"bank_code": "bank a"}, "bank_code"),
        ({"contact": {"name": "张经理"}}, "contact.phone"),
        ({"contact": {"name": "张经理", "phone": "13800138000", "email": "nope"}}, "contact.email"),
        ({"indicators": {"invention_patents": -1}}, "indicators.invention_patents"),
        ({"indicators": {"rd_spending": "-1"}}, "indicators.rd_spending"),
        ({"indicators": {"total_staff": 0}}, "indicators.total_staff"),
        ({"indicators": {"rd_staff": 51, "total_staff": 50}}, "indicators.rd_staff"),
        ({"indicators": {"high_tech_certificate": "perhaps"}}, "indicators.high_tech_certificate"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_malformed_input_is_422_naming_the_field(
    client: TestClient, bank_a: Caller, change: dict[str, Any], field: str
) -> None:
    payload = application_payload(credit_code(), "BANK_A")
    change = dict(change)
    indicators = change.pop("indicators", {})
    payload.update(change)
    payload["indicators"].update(indicators)
    r = client.post(URL, json=payload)
    assert r.status_code == 422, r.text
    assert field in _field_of(r)


def test_term_longer_than_the_programme_allows(
    client: TestClient, session: Session, bank_a: Caller, settings: Settings
) -> None:
    ent = make_enterprise(session)
    r = client.post(
        URL, json=application_payload(ent.credit_code, "BANK_A", term_months=settings.max_term_months + 1)
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "term_too_long"
    assert _field_of(r) == {"term_months"}


# --- the credit code and the credit line --------------------------------------------------------


@pytest.mark.parametrize("bad", ["9150011OMA0000001X", "91500114MA000000", "915001I4MA00000019", ""])
def test_a_malformed_credit_code_is_refused_with_its_own_code(
    client: TestClient, bank_a: Caller, bad: str
) -> None:
    r = client.post(URL, json=application_payload(bad, "BANK_A"))
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "credit_code_malformed"
    assert _field_of(r) == {"credit_code"}


def test_the_check_character_is_verified_as_in_the_registry(
    client: TestClient, session: Session, bank_a: Caller
) -> None:
    good = credit_code()
    wrong = good[:17] + ("0" if good[17] != "0" else "1")  # well formed, wrong check character
    r = client.post(URL, json=application_payload(wrong, "BANK_A"))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "credit_code_checksum_failed"
    assert _field_of(r) == {"credit_code"}
    assert session.scalar(select(Application).where(Application.credit_code == wrong)) is None
    # a code the registry accepted on an officer's audited override is the registry's decision
    make_enterprise(session, credit_code=wrong, checksum_override_reason="early code, licence checked")
    r = client.post(URL, json=application_payload(wrong, "BANK_A"))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "pending_bank"
    # a well-formed code with the right check character, not in the registry: taken, ineligible
    r = client.post(URL, json=application_payload(credit_code(), "BANK_A"))
    assert r.status_code == 201, r.text
    assert r.json()["ineligible_reason"] == "enterprise_not_in_registry"


def test_a_request_above_the_credit_line_is_recorded_with_the_line_and_the_reason(
    client: TestClient, session: Session, bank_a: Caller, officer: Caller
) -> None:
    ent = make_enterprise(session)
    r = client.post(URL, json=application_payload(ent.credit_code, "BANK_A", requested_amount="6000000"))
    assert r.status_code == 201, r.text
    body = r.json()
    ev = body["evaluation"]
    assert (ev["grade"], ev["credit_line"]) == ("A", "5000000.00")
    assert ev["requested_above_line"] is True
    assert ev["line_note"] == (
        "The requested 6,000,000.00 yuan is above the credit line of 5,000,000.00 yuan (grade A); "
        "a bank may approve at most 5,000,000.00 yuan"
    )
    number = body["application_no"]
    rec = session.scalar(
        select(AuditRecord).where(AuditRecord.action == "application.submit", AuditRecord.entity_id == number)
    )
    assert rec is not None
    assert rec.after is not None
    assert rec.after["line_note"] == ev["line_note"]
    # the applicant sees it with the status token too
    assert (
        status_of(client, number, body["status_token"]).json()["evaluation"]["line_note"] == ev["line_note"]
    )
    # an officer who raises the line to cover the request clears the note
    r = client.post(
        f"{URL}/{number}/override",
        json={"credit_line": "6000000", "reason": "strong collateral-free record"},
        headers=officer.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["evaluation"]["requested_above_line"] is False
    assert r.json()["evaluation"]["line_note"] is None


def test_a_request_within_the_line_has_no_note(client: TestClient, session: Session, bank_a: Caller) -> None:
    ent = make_enterprise(session)
    r = client.post(URL, json=application_payload(ent.credit_code, "BANK_A", requested_amount="5000000"))
    assert r.status_code == 201, r.text
    assert r.json()["evaluation"]["requested_above_line"] is False
    assert r.json()["evaluation"]["line_note"] is None
