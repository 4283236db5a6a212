"""Endpoint management with a bank key: a bank sees and changes only its own endpoints, bureau staff read
them all, the secret is shown once, bad input is refused with a code naming the field."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from loanfund.core.config import Settings
from tests.factories import Caller
from tests.webhooks.conftest import Drain, EndpointMaker
from tests.webhooks.receiver import Receiver

ENDPOINTS = "/api/v1/webhooks/endpoints"


def test_bank_b_cannot_see_or_change_bank_a_endpoints(
    client: TestClient,
    bank_a: Caller,
    bank_b: Caller,
    analyst: Caller,
    endpoint: EndpointMaker,
    receiver: Receiver,
    drain: Drain,
) -> None:
    mine, _ = endpoint(bank_a, description="core banking")
    eid = mine["id"]
    delivery = client.post(f"{ENDPOINTS}/{eid}/test", headers=bank_a.headers).json()
    drain()
    b = bank_b.headers
    assert client.get(ENDPOINTS, headers=b).json()["items"] == []
    assert client.get(ENDPOINTS, params={"bank_id": bank_a.id}, headers=b).json()["items"] == []
    refused = {
        "read": client.get(f"{ENDPOINTS}/{eid}", headers=b),
        "change": client.patch(f"{ENDPOINTS}/{eid}", json={"enabled": False}, headers=b),
        "rotate": client.post(f"{ENDPOINTS}/{eid}/rotate-secret", headers=b),
        "test": client.post(f"{ENDPOINTS}/{eid}/test", headers=b),
        "log": client.get(f"{ENDPOINTS}/{eid}/deliveries", headers=b),
        "retry": client.post(f"{ENDPOINTS}/deliveries/{delivery['id']}/retry", headers=b),
        "retry under it": client.post(f"{ENDPOINTS}/{eid}/deliveries/{delivery['id']}/retry", headers=b),
        "delete": client.delete(f"{ENDPOINTS}/{eid}", headers=b),
    }
    assert {k: r.status_code for k, r in refused.items()} == dict.fromkeys(refused, 404)
    assert {r.json()["error"]["code"] for r in refused.values()} == {
        "webhook_endpoint_not_found",
        "webhook_delivery_not_found",
    }
    # nothing changed, nothing more was sent
    after = client.get(f"{ENDPOINTS}/{eid}", headers=bank_a.headers).json()
    assert after == {**mine, "updated_at": after["updated_at"]}
    assert after["enabled"] is True
    assert len(receiver.received) == 1
    # bank B's own endpoint is its own; the bureau sees both
    theirs = client.post(ENDPOINTS, json={"url": "https://hooks.bank-b.example.cn/in"}, headers=b).json()
    assert [e["id"] for e in client.get(ENDPOINTS, headers=b).json()["items"]] == [theirs["id"]]
    everyone = client.get(ENDPOINTS, headers=analyst.headers).json()["items"]
    assert [(e["id"], e["bank_id"]) for e in everyone] == [(eid, bank_a.id), (theirs["id"], bank_b.id)]
    only_a = client.get(ENDPOINTS, params={"bank_id": bank_a.id}, headers=analyst.headers).json()["items"]
    assert [e["id"] for e in only_a] == [eid]
    assert client.get(f"{ENDPOINTS}/{eid}/deliveries", headers=analyst.headers).status_code == 200
    r = client.patch(f"{ENDPOINTS}/{eid}", json={"enabled": False}, headers=analyst.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "bank_only")


def test_the_secret_is_shown_once_and_never_stored(
    client: TestClient, session: Session, bank_a: Caller, hook_settings: Settings
) -> None:
    r = client.post(ENDPOINTS, json={"url": "https://hooks.example.cn/a"}, headers=bank_a.headers)
    assert r.status_code == 201
    secret = r.json()["secret"]
    assert secret.startswith("whsec_")
    eid = r.json()["id"]
    for read in (
        client.get(f"{ENDPOINTS}/{eid}", headers=bank_a.headers),
        client.get(ENDPOINTS, headers=bank_a.headers),
        client.patch(f"{ENDPOINTS}/{eid}", json={"description": "x"}, headers=bank_a.headers),
    ):
        assert '"secret"' not in read.text
        assert secret not in read.text
    rotated = client.post(f"{ENDPOINTS}/{eid}/rotate-secret", headers=bank_a.headers).json()["secret"]
    dump = repr([tuple(row) for row in session.execute(select(AuditRecord.__table__))])
    assert "webhook_endpoint.rotate_secret" in dump
    assert secret not in dump
    assert rotated not in dump
    # another server key gives other secrets: nothing in the database reproduces them
    other = hook_settings.model_copy(update={"secret_key": SecretStr("another-" + "k" * 40)})
    from loanfund.webhooks import signing
    from loanfund.webhooks.models import WebhookEndpoint

    row = session.get(WebhookEndpoint, eid)
    assert row is not None
    assert signing.secret_for(hook_settings, row.secret_salt) == rotated
    assert signing.secret_for(other, row.secret_salt) != rotated


def test_refusals(client: TestClient, bank_a: Caller, hook_settings: Settings, officer: Caller) -> None:
    def post(body: dict[str, Any], headers: dict[str, str] = bank_a.headers) -> tuple[int, str]:
        r = client.post(ENDPOINTS, json=body, headers=headers)
        return r.status_code, r.json().get("error", {}).get("code", "")

    assert post({"url": "ftp://hooks.example.cn"}) == (422, "validation_error")
    assert post({"url": "https://hooks.example.cn", "event_types": ["claim.exploded"]}) == (
        422,
        "validation_error",
    )
    assert post({"url": "https://hooks.example.cn", "event_types": []}) == (422, "validation_error")
    assert post({"url": "https://hooks.example.cn", "secret": "mine"}) == (422, "validation_error")
    assert post({"url": "https://u:p@hooks.example.cn"}) == (422, "webhook_url_not_allowed")
    assert post({"url": "https://hooks.example.cn"})[0] == 201
    assert post({"url": "https://hooks.example.cn"}) == (409, "webhook_endpoint_exists")
    assert post({"url": "https://hooks.example.cn"}, officer.headers) == (403, "bank_only")
    hook_settings.webhook_max_endpoints_per_bank = 2
    try:
        assert post({"url": "https://hooks.example.cn/2"})[0] == 201
        assert post({"url": "https://hooks.example.cn/3"}) == (409, "webhook_endpoint_limit")
    finally:
        hook_settings.webhook_max_endpoints_per_bank = 10
    listed = client.get(ENDPOINTS, headers=bank_a.headers).json()["items"]
    first = listed[0]["id"]
    r = client.patch(f"{ENDPOINTS}/{first}", json={"url": listed[1]["url"]}, headers=bank_a.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "webhook_endpoint_exists")
    r = client.patch(f"{ENDPOINTS}/{first}", json={"url": None}, headers=bank_a.headers)
    assert r.status_code == 422
    assert client.get(f"{ENDPOINTS}/999999", headers=bank_a.headers).status_code == 404
    r = client.post(f"{ENDPOINTS}/deliveries/999999/retry", headers=bank_a.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "webhook_delivery_not_found")


def test_change_pause_and_delete(
    client: TestClient, session: Session, bank_a: Caller, endpoint: EndpointMaker, drain: Drain
) -> None:
    created, _ = endpoint(bank_a, event_types=["claim.paid", "claim.paid"])
    eid = created["id"]
    assert created["event_types"] == ["claim.paid"]
    r = client.patch(
        f"{ENDPOINTS}/{eid}", json={"event_types": None, "description": "all of it"}, headers=bank_a.headers
    )
    assert (r.json()["event_types"], r.json()["description"]) == (None, "all of it")
    paused = client.patch(f"{ENDPOINTS}/{eid}", json={"enabled": False}, headers=bank_a.headers).json()
    assert (paused["enabled"], paused["disabled_reason"]) == (False, "disabled by the bank")
    from loanfund.webhooks import outbox

    assert outbox.emit(session, bank_a.id, outbox.EventType.claim_paid, {}) == 0  # paused: none queued
    client.patch(f"{ENDPOINTS}/{eid}", json={"enabled": True}, headers=bank_a.headers)
    for _ in range(3):
        client.post(f"{ENDPOINTS}/{eid}/test", headers=bank_a.headers)
    drain()
    page = client.get(f"{ENDPOINTS}/{eid}/deliveries", params={"limit": 2}, headers=bank_a.headers).json()
    rest = client.get(
        f"{ENDPOINTS}/{eid}/deliveries", params={"cursor": page["next_cursor"]}, headers=bank_a.headers
    ).json()
    ids = [d["id"] for d in page["items"] + rest["items"]]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == 3
    assert rest["next_cursor"] is None
    only = client.get(
        f"{ENDPOINTS}/{eid}/deliveries", params={"state": "failed"}, headers=bank_a.headers
    ).json()["items"]
    assert only == []
    assert client.delete(f"{ENDPOINTS}/{eid}", headers=bank_a.headers).status_code == 204
    assert client.get(f"{ENDPOINTS}/{eid}", headers=bank_a.headers).status_code == 404
    actions = session.scalars(
        select(AuditRecord.action)
        .where(AuditRecord.entity_type == "webhook_endpoint")
        .order_by(AuditRecord.id)
    ).all()
    assert actions == [
        "webhook_endpoint.create",
        "webhook_endpoint.update",
        "webhook_endpoint.update",
        "webhook_endpoint.update",
        "webhook_endpoint.test",
        "webhook_endpoint.test",
        "webhook_endpoint.test",
        "webhook_endpoint.delete",
    ]
