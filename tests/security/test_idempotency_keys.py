"""Idempotency-Key on every request that changes state, bureau staff's included: the first answer is
replayed exactly, the same key for another request is refused, and keys belong to their caller."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from loanfund.core.ratelimit import RateLimiter
from tests.factories import staff_caller
from tests.security.conftest import World, api_routes
from tests.security.test_authz_matrix import MATRIX, Row

# Issuing a key — or a webhook endpoint's signing secret — answers a secret, which is never stored: there is
# no first answer to replay. Deleting an endpoint is idempotent by itself (a retry finds it gone: 404).
NO_KEY = {
    ("POST", "/api/v1/staff/{staff_id}/keys"),
    ("POST", "/api/v1/banks/{bank_id}/keys"),
    ("POST", "/api/v1/webhooks/endpoints"),
    ("POST", "/api/v1/webhooks/endpoints/{endpoint_id}/rotate-secret"),
    ("DELETE", "/api/v1/webhooks/endpoints/{endpoint_id}"),
    ("POST", "/api/v1/applications"),  # the public submission: rate-limited, see its own tests
}
STAFF = ("officer", "approver", "admin")


def _takes_key(app: FastAPI, method: str, path: str) -> bool:
    op = app.openapi()["paths"][path][method.lower()]
    return any(p["name"] == "Idempotency-Key" for p in op.get("parameters", []))


def test_every_state_changing_operation_takes_an_idempotency_key(app: FastAPI) -> None:
    changing = [k for k in api_routes(app) if k[0] in ("POST", "PATCH", "PUT", "DELETE")]
    assert len(changing) > 25
    missing = [f"{m} {p}" for m, p in changing if (m, p) not in NO_KEY and not _takes_key(app, m, p)]
    assert not missing, "no Idempotency-Key on:\n" + "\n".join(missing)


def _staff_writes() -> list[tuple[str, str]]:
    rows = []
    for (method, path), row in MATRIX.items():
        statuses = row.statuses()
        if method != "GET" and (method, path) not in NO_KEY and any(200 <= statuses[k] < 300 for k in STAFF):
            rows.append((method, path))
    return rows


def _request(world: World, route: tuple[str, str], row: Row, kind: str, key: str) -> dict[str, Any]:
    method, path = route
    params = {**world.path_params(), **(row.path(world) if row.path else {})}
    kwargs: dict[str, Any] = {
        "method": method,
        "url": path.format_map(params),
        "headers": {**world.headers(kind), "Idempotency-Key": key},
        "params": row.query,
    }
    if row.body is not None:
        body = row.body(world)
        if row.media_type == "application/json":
            kwargs["json"] = body
        else:
            kwargs["content"] = body.encode()
            kwargs["headers"]["Content-Type"] = row.media_type
    return kwargs


@pytest.mark.parametrize("route", _staff_writes(), ids=lambda r: f"{r[0]} {r[1]}")
def test_a_staff_action_replays_its_first_answer(
    route: tuple[str, str],
    client: TestClient,
    world: World,
    connection: Connection,
    fresh_limits: RateLimiter,
) -> None:
    row = MATRIX[route]
    kind = next(k for k in STAFF if 200 <= row.statuses()[k] < 300)
    request = _request(world, route, row, kind, "staff-key-1")
    savepoint = connection.begin_nested()
    try:
        first = client.request(**request)
        assert 200 <= first.status_code < 300, first.text
        audited = connection.scalar(select(func.count()).select_from(AuditRecord))
        again = client.request(**request)
        assert again.status_code == first.status_code
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
        assert connection.scalar(select(func.count()).select_from(AuditRecord)) == audited  # done once
    finally:
        savepoint.rollback()


def test_the_same_key_for_another_request_is_refused(client: TestClient, world: World) -> None:
    key = {"Idempotency-Key": "contribution-1"}
    body = {"source": "city", "amount": "1000.00", "value_date": "2021-01-04", "budget_doc_no": "IDEM-1"}
    headers = {**world.headers("officer"), **key}
    first = client.post("/api/v1/fund/contributions", json=body, headers=headers)
    assert first.status_code == 201, first.text
    other = client.post("/api/v1/fund/contributions", json={**body, "amount": "2000.00"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    # a key is per request, not per route: the same key on another action is another request
    claim = client.post(f"/api/v1/claims/{world.claim_id}/approve", json={}, headers=headers)
    assert claim.status_code == 422
    assert claim.json()["error"]["code"] == "idempotency_key_reused"


def test_a_refusal_is_replayed_too(client: TestClient, world: World) -> None:
    """A business refusal is a first answer like any other (the claim was not reviewed by this approver)."""
    headers = {**world.headers("approver"), "Idempotency-Key": "pay-1"}
    first = client.post(f"/api/v1/claims/{world.claim_id}/pay", headers=headers)
    assert first.status_code == 409, first.text
    again = client.post(f"/api/v1/claims/{world.claim_id}/pay", headers=headers)
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert again.headers["idempotent-replayed"] == "true"


def test_keys_belong_to_the_staff_member(
    client: TestClient, session: Session, settings: Any, world: World
) -> None:
    other = staff_caller(session, settings, "officer")
    key = {"Idempotency-Key": "shared-staff-key"}
    body = {"source": "city", "amount": "1000.00", "value_date": "2021-01-04", "budget_doc_no": "IDEM-2"}
    first = client.post("/api/v1/fund/contributions", json=body, headers={**world.headers("officer"), **key})
    assert first.status_code == 201
    second = client.post("/api/v1/fund/contributions", json=body, headers={**other.headers, **key})
    assert "idempotent-replayed" not in second.headers  # its own execution: the document number is taken
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "budget_doc_duplicate"
