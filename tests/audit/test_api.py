from fastapi.testclient import TestClient

from tests.factories import Caller


def test_audit_records_request_id_and_filters(client: TestClient, officer: Caller, analyst: Caller) -> None:
    r = client.post(
        "/api/v1/banks",
        json={"code": "AUD", "name": "n"},
        headers={**officer.headers, "X-Request-ID": "req-42"},
    )
    bank_id = r.json()["id"]
    page = client.get(
        "/api/v1/audit", params={"entity_type": "bank", "entity_id": str(bank_id)}, headers=analyst.headers
    ).json()
    assert len(page["items"]) == 1
    rec = page["items"][0]
    assert rec["action"] == "bank.create"
    assert rec["request_id"] == "req-42"
    assert rec["actor_kind"] == "staff"
    assert rec["actor_id"] == officer.id
    assert rec["after"]["code"] == "AUD"


def test_audit_is_bureau_only(client: TestClient, bank_a: Caller) -> None:
    assert client.get("/api/v1/audit", headers=bank_a.headers).status_code == 403


def test_naive_datetime_filter_is_422(client: TestClient, analyst: Caller) -> None:
    r = client.get("/api/v1/audit", params={"since": "2021-01-01T00:00:00"}, headers=analyst.headers)
    assert r.status_code == 422
    r = client.get("/api/v1/audit", params={"since": "2021-01-01T00:00:00Z"}, headers=analyst.headers)
    assert r.status_code == 200
