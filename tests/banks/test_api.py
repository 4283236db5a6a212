from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from tests.factories import Caller

URL = "/api/v1/banks"


def test_officer_creates_a_bank_with_default_share(client: TestClient, officer: Caller) -> None:
    r = client.post(
        URL,
        json={"code": "QJ_BANK", "name": "黔江银行", "lending_quota": "50000000"},
        headers=officer.headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["fund_share"] == "0.8000"
    assert body["lending_quota"] == "50000000.00"
    assert body["status"] == "active"


def test_duplicate_code_is_409(client: TestClient, officer: Caller, bank_a: Caller) -> None:
    r = client.post(URL, json={"code": "BANK_A", "name": "again"}, headers=officer.headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "bank_code_taken"


def test_bad_terms_are_422_naming_the_field(client: TestClient, officer: Caller) -> None:
    r = client.post(URL, json={"code": "X1", "name": "n", "fund_share": "1.5"}, headers=officer.headers)
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "fund_share"
    r = client.post(URL, json={"code": "lower", "name": "n"}, headers=officer.headers)
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "code"


def test_roles(client: TestClient, analyst: Caller, bank_a: Caller, admin: Caller) -> None:
    body = {"code": "ZZ", "name": "n"}
    assert client.post(URL, json=body, headers=analyst.headers).status_code == 403
    assert client.post(URL, json=body, headers=admin.headers).status_code == 403
    r = client.post(URL, json=body, headers=bank_a.headers)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "bureau_only"
    assert client.post(URL, json=body).status_code == 401
    assert client.post(URL, json=body, headers={"Authorization": "Bearer lfb_wrong"}).status_code == 401


def test_bank_sees_only_itself(client: TestClient, bank_a: Caller, bank_b: Caller, analyst: Caller) -> None:
    r = client.get(URL, headers=bank_a.headers)
    assert [b["code"] for b in r.json()["items"]] == ["BANK_A"]
    assert client.get(f"{URL}/{bank_b.id}", headers=bank_a.headers).status_code == 404
    assert client.get(f"{URL}/{bank_a.id}", headers=bank_a.headers).json()["code"] == "BANK_A"
    assert client.get(f"{URL}/me", headers=bank_a.headers).json()["id"] == bank_a.id
    assert client.get(f"{URL}/me", headers=analyst.headers).status_code == 403
    codes = [b["code"] for b in client.get(URL, headers=analyst.headers).json()["items"]]
    assert codes == ["BANK_A", "BANK_B"]


def test_update_suspend_reinstate_are_audited(
    client: TestClient, officer: Caller, bank_a: Caller, session: Session
) -> None:
    r = client.patch(f"{URL}/{bank_a.id}", json={"fund_share": "0.75"}, headers=officer.headers)
    assert r.status_code == 200
    assert r.json()["fund_share"] == "0.7500"
    r = client.post(f"{URL}/{bank_a.id}/suspend", json={"reason": "NPL review"}, headers=officer.headers)
    assert r.json()["status"] == "suspended"
    again = client.post(f"{URL}/{bank_a.id}/suspend", json={"reason": "NPL review"}, headers=officer.headers)
    assert again.status_code == 409
    r = client.post(f"{URL}/{bank_a.id}/reinstate", json={"reason": "cleared"}, headers=officer.headers)
    assert r.json()["status"] == "active"
    actions = session.scalars(
        select(AuditRecord.action).where(
            AuditRecord.entity_type == "bank", AuditRecord.entity_id == str(bank_a.id)
        )
    ).all()
    assert actions == ["bank.create", "bank.update", "bank.suspend", "bank.reinstate"]
    rec = session.scalar(select(AuditRecord).where(AuditRecord.action == "bank.update"))
    assert rec is not None
    assert rec.before is not None
    assert rec.after is not None
    assert (rec.before["fund_share"], rec.after["fund_share"]) == ("0.8000", "0.7500")
    assert rec.actor_kind == "staff"
    assert rec.actor_id == officer.id


def test_pagination(client: TestClient, officer: Caller) -> None:
    for i in range(5):
        client.post(URL, json={"code": f"P{i}", "name": f"p{i}"}, headers=officer.headers)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get(URL, params=params, headers=officer.headers).json()
        seen += [b["code"] for b in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["P0", "P1", "P2", "P3", "P4"]
    assert client.get(URL, params={"cursor": "abc"}, headers=officer.headers).status_code == 422
