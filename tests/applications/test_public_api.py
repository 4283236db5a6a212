"""The public side of applications: idempotent submission, the public bank list, plain-language
reasons, and the officer's reissue of a lost status token."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from loanfund.applications.models import Application
from loanfund.audit.models import AuditRecord
from loanfund.banks import service as bank_service
from loanfund.banks.models import BankStatus
from loanfund.core.idempotency import IdempotencyRecord
from tests.factories import TEST_ACTOR, Caller, application_payload, credit_code, make_enterprise

URL = "/api/v1/applications"


def _count(session: Session, code: str) -> int:
    return int(session.scalar(select(func.count()).where(Application.credit_code == code)) or 0)


def _read(client: TestClient, number: str, token: str) -> Any:
    return client.get(f"{URL}/{number}", headers={"Authorization": f"Bearer {token}"})


def test_a_retry_with_the_same_key_replays_the_first_answer_exactly(
    client: TestClient, session: Session, bank_a: Caller
) -> None:
    ent = make_enterprise(session)
    body = application_payload(ent.credit_code, "BANK_A")
    key = {"Idempotency-Key": "9f1c2e4a-public-1"}
    first = client.post(URL, json=body, headers=key)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = client.post(URL, json=body, headers=key)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content  # token included
    assert _count(session, ent.credit_code) == 1
    token = first.json()["status_token"]
    assert _read(client, first.json()["application_no"], token).status_code == 200
    # no table holds the token: the stored answer has a sealed marker in its place
    stored = session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == key["Idempotency-Key"]))
    assert stored is not None
    assert stored.bank_id is None
    assert token not in stored.response_body
    assert "~sealed:lft:" in stored.response_body


def test_the_same_key_with_another_body_is_refused(
    client: TestClient, session: Session, bank_a: Caller
) -> None:
    ent = make_enterprise(session)
    key = {"Idempotency-Key": "9f1c2e4a-public-2"}
    assert (
        client.post(URL, json=application_payload(ent.credit_code, "BANK_A"), headers=key).status_code == 201
    )
    other = application_payload(ent.credit_code, "BANK_A", requested_amount="900000.00")
    r = client.post(URL, json=other, headers=key)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "idempotency_key_reused"
    assert _count(session, ent.credit_code) == 1


def test_without_a_key_each_post_is_a_new_application(
    client: TestClient, session: Session, bank_a: Caller
) -> None:
    ent = make_enterprise(session)
    body = application_payload(ent.credit_code, "BANK_A")
    a, b = client.post(URL, json=body), client.post(URL, json=body)
    assert a.json()["application_no"] != b.json()["application_no"]
    assert a.json()["status_token"] != b.json()["status_token"]


def test_a_refusal_is_replayed_too(client: TestClient, session: Session, bank_a: Caller) -> None:
    ent = make_enterprise(session)
    key = {"Idempotency-Key": "9f1c2e4a-public-3"}
    body = application_payload(ent.credit_code, "NO_SUCH_BANK")
    first = client.post(URL, json=body, headers=key)
    assert first.status_code == 422
    assert first.json()["error"]["code"] == "bank_unknown"
    again = client.post(URL, json=body, headers=key)
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"


def test_public_keys_and_bank_keys_are_separate_scopes(
    client: TestClient, session: Session, bank_a: Caller
) -> None:
    """A key a bank used is not the public scope's, nor the other way round."""
    ent = make_enterprise(session)
    key = {"Idempotency-Key": "shared-between-scopes"}
    assert (
        client.post(URL, json=application_payload(ent.credit_code, "BANK_A"), headers=key).status_code == 201
    )
    app_no = session.scalar(
        select(Application.application_no).where(Application.credit_code == ent.credit_code)
    )
    r = client.post(
        f"/api/v1/bank/applications/{app_no}/reject",
        json={"reason": "not this time"},
        headers={**bank_a.headers, **key},
    )
    assert r.status_code == 200
    assert "idempotent-replayed" not in r.headers


def test_the_partner_banks_are_public(
    client: TestClient, session: Session, bank_a: Caller, bank_b: Caller
) -> None:
    bank = bank_service.get_bank(session, bank_b.id)
    bank_service.set_status(session, TEST_ACTOR, bank, BankStatus.suspended, "breaker tripped")
    session.commit()
    r = client.get("/api/v1/partner-banks")
    assert r.status_code == 200
    items = {b["code"]: b for b in r.json()["items"]}
    assert items["BANK_A"] == {"code": "BANK_A", "name": "Bank BANK_A", "accepting_applications": True}
    assert items["BANK_B"]["accepting_applications"] is False
    # public details only: no terms, quota, share or reason
    assert set(items["BANK_B"]) == {"code", "name", "accepting_applications"}


def test_an_ineligible_application_says_why_and_what_to_do(client: TestClient, bank_a: Caller) -> None:
    r = client.post(URL, json=application_payload(credit_code(), "BANK_A"))
    body = r.json()
    assert body["status"] == "ineligible"
    assert body["ineligible_reason"] == "enterprise_not_in_registry"
    assert "register of technology-based enterprises" in body["explanation"]["why"]
    assert "apply again" in body["explanation"]["what_to_do"]


def test_an_officer_reissues_a_lost_token(
    client: TestClient, session: Session, bank_a: Caller, officer: Caller, analyst: Caller
) -> None:
    ent = make_enterprise(session)
    first = client.post(URL, json=application_payload(ent.credit_code, "BANK_A")).json()
    number, old = first["application_no"], first["status_token"]
    url = f"{URL}/{number}/status-token"
    reason = {"reason": "applicant called; licence and ID checked"}
    assert client.post(url, json=reason, headers=analyst.headers).status_code == 403
    assert client.post(url, json=reason, headers=bank_a.headers).status_code == 403
    r = client.post(url, json=reason, headers=officer.headers)
    assert r.status_code == 200, r.text
    new = r.json()["status_token"]
    assert r.json()["application_no"] == number
    assert new.startswith("lft_")
    assert new != old
    assert _read(client, number, old).status_code == 404  # the old token stops working
    assert _read(client, number, new).status_code == 200
    audit = session.scalars(
        select(AuditRecord).where(AuditRecord.action == "application.status_token_reissue")
    ).all()
    assert len(audit) == 1
    assert audit[0].entity_id == number
    assert audit[0].reason == reason["reason"]
    assert audit[0].actor_kind == "staff"
    row = session.execute(
        text("SELECT * FROM audit_log WHERE action = 'application.status_token_reissue'")
    ).one()
    assert new not in str(tuple(row))
    assert old not in str(tuple(row))
    missing = client.post(f"{URL}/KV2099999999/status-token", json=reason, headers=officer.headers)
    assert missing.status_code == 404
