import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from loanfund.core.config import Settings
from loanfund.core.db import utcnow
from loanfund.staff.models import ApiKey
from tests.factories import Caller


def test_admin_creates_staff_and_issues_a_key_shown_once(
    client: TestClient, admin: Caller, session: Session
) -> None:
    r = client.post("/api/v1/staff", json={"name": "周审核", "role": "approver"}, headers=admin.headers)
    assert r.status_code == 201
    staff_id = r.json()["id"]
    r = client.post(f"/api/v1/staff/{staff_id}/keys", json={"label": "laptop"}, headers=admin.headers)
    assert r.status_code == 201
    secret = r.json()["key"]
    assert secret.startswith("lfs_")
    assert len(secret) >= 40
    # works, as an approver
    assert client.get("/api/v1/banks", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    # never shown again
    listed = client.get("/api/v1/keys", params={"staff_id": staff_id}, headers=admin.headers).json()["items"]
    assert len(listed) == 1
    assert "key" not in listed[0]
    assert listed[0]["last_used_at"] is not None


def test_keys_are_stored_only_as_hashes(session: Session, bank_a: Caller, officer: Caller) -> None:
    for key in (bank_a.key, officer.key):
        rows = session.execute(select(ApiKey.key_hash, ApiKey.prefix, ApiKey.label)).all()
        assert all(key not in " ".join(str(c) for c in row) for row in rows)
    dump = session.execute(text("SELECT * FROM api_keys")).all()
    assert not any(bank_a.key in str(row) for row in dump)


def test_revoked_key_is_401(client: TestClient, admin: Caller, bank_a: Caller, session: Session) -> None:
    key_id = session.scalar(select(ApiKey.id).where(ApiKey.bank_id == bank_a.id))
    assert client.get("/api/v1/banks/me", headers=bank_a.headers).status_code == 200
    r = client.post(f"/api/v1/keys/{key_id}/revoke", headers=admin.headers)
    assert r.status_code == 200
    assert r.json()["revoked_at"] is not None
    r = client.get("/api/v1/banks/me", headers=bank_a.headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert client.post(f"/api/v1/keys/{key_id}/revoke", headers=admin.headers).status_code == 409


def test_bank_key_issued_by_admin(client: TestClient, admin: Caller, bank_a: Caller) -> None:
    r = client.post(f"/api/v1/banks/{bank_a.id}/keys", json={}, headers=admin.headers)
    assert r.status_code == 201
    new = {"Authorization": f"Bearer {r.json()['key']}"}
    assert client.get("/api/v1/banks/me", headers=new).json()["code"] == "BANK_A"


def test_only_admin_manages_staff_and_keys(client: TestClient, officer: Caller, bank_a: Caller) -> None:
    assert (
        client.post("/api/v1/staff", json={"name": "x", "role": "admin"}, headers=officer.headers).status_code
        == 403
    )
    assert client.get("/api/v1/keys", headers=officer.headers).status_code == 403
    assert client.post(f"/api/v1/banks/{bank_a.id}/keys", json={}, headers=bank_a.headers).status_code == 403


def test_deactivated_staff_key_is_401(client: TestClient, admin: Caller, officer: Caller) -> None:
    assert client.post(f"/api/v1/staff/{officer.id}/deactivate", headers=admin.headers).status_code == 200
    assert client.get("/api/v1/banks", headers=officer.headers).status_code == 401


def test_a_key_revoked_by_another_process_stops_working_within_the_cache_time(
    client: TestClient, bank_a: Caller, session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "key_cache_s", 0.3)
    assert client.get("/api/v1/banks/me", headers=bank_a.headers).status_code == 200
    # revoked straight in the database, as another worker process would: this process is not told
    session.execute(update(ApiKey).where(ApiKey.bank_id == bank_a.id).values(revoked_at=utcnow()))
    session.commit()
    assert client.get("/api/v1/banks/me", headers=bank_a.headers).status_code == 200  # remembered
    time.sleep(0.35)
    assert client.get("/api/v1/banks/me", headers=bank_a.headers).status_code == 401


def test_without_the_cache_every_request_asks_the_database(
    client: TestClient, bank_a: Caller, session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "key_cache_s", 0)
    assert client.get("/api/v1/banks/me", headers=bank_a.headers).status_code == 200
    session.execute(update(ApiKey).where(ApiKey.bank_id == bank_a.id).values(revoked_at=utcnow()))
    session.commit()
    assert client.get("/api/v1/banks/me", headers=bank_a.headers).status_code == 401
