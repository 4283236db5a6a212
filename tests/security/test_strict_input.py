"""Strict input: a JSON boolean is never a number, and a date parameter is ISO 8601 text, never a Unix time.

Every request body is checked field by field from its documented example (tests/test_openapi.py); here,
the cases a client most often gets wrong, and every date parameter of the document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.security.conftest import AFTER_REPORT, World
from tests.security.test_authz_matrix import KINDS, MATRIX


def _fields(r: Any) -> set[str]:
    return {d["field"] for d in r.json()["error"]["details"]}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/v1/loans/{loan_id}/delinquency",
            {"bank_event_ref": "B-1", "days_past_due": True},
            "days_past_due",
        ),
        (
            "/api/v1/loans/{loan_id}/delinquency",
            {"bank_event_ref": "B-2", "days_past_due": 1.0},
            "days_past_due",
        ),
        (
            "/api/v1/loans/{loan_id}/delinquency",
            {"bank_event_ref": "B-3", "days_past_due": "5"},
            "days_past_due",
        ),
        ("/api/v1/loans/{loan_id}/disbursements", {"bank_event_ref": "B-4", "amount": True}, "amount"),
        ("/api/v1/claims", {"loan_id": True, "principal_at_default": "1000.00"}, "loan_id"),
    ],
)
def test_a_boolean_or_text_is_not_a_number(
    client: TestClient, world: World, path: str, body: dict[str, Any], field: str
) -> None:
    if "date" not in body and "loan_id" in path:
        body = {**body, "date": AFTER_REPORT.isoformat()}
    url = path.format_map(world.path_params())
    r = client.post(url, json=body, headers=world.headers("bank_own"))
    assert r.status_code == 422, r.text
    assert field in _fields(r)


def test_a_boolean_in_a_batch_item_or_a_status_line_is_refused(client: TestClient, world: World) -> None:
    item = {"type": "delinquency", "bank_loan_ref": world.loan_ref, "bank_event_ref": "B-5"}
    item |= {"date": AFTER_REPORT.isoformat(), "days_past_due": True}
    r = client.post("/api/v1/loans/batch", json={"items": [item]}, headers=world.headers("bank_own"))
    assert r.status_code == 422, r.text
    line = {"bank_loan_ref": world.loan_ref, "outstanding_principal": "0", "days_past_due": False}
    r = client.post(
        "/api/v1/status-reports",
        json={"month_end": "2021-07-31", "loans": [line]},
        headers=world.headers("bank_own"),
    )
    assert r.status_code == 422, r.text
    assert "loans.0.days_past_due" in _fields(r)


def _date_parameters(app: FastAPI) -> list[tuple[str, str, str]]:
    """(method, path, parameter) of every query or path parameter documented as a date or timestamp."""
    found = []
    for path, item in app.openapi()["paths"].items():
        for method, op in item.items():
            for p in op.get("parameters", []):
                schemas = [p["schema"], *p["schema"].get("anyOf", [])]
                if any(s.get("format") in ("date", "date-time") for s in schemas):
                    found.append((method.upper(), path, p["name"]))
    return found


def test_every_date_parameter_refuses_a_unix_timestamp(
    app: FastAPI, client: TestClient, world: World
) -> None:
    params = _date_parameters(app)
    assert ("GET", "/api/v1/fund/position", "as_of") in params
    assert ("GET", "/api/v1/fund/exposure", "as_of") in params
    accepted = []
    for method, path, name in params:
        row = MATRIX[(method, path)]
        statuses = row.statuses()
        kind = next(k for k in KINDS if 200 <= statuses[k] < 300)
        url = path.format_map({**world.path_params(), **(row.path(world) if row.path else {})})
        query = {**(row.query or {}), name: "1699920000"}
        r = client.request(method, url, params=query, headers=world.headers(kind))
        if r.status_code != 422 or name not in _fields(r):
            accepted.append(f"{method} {path} ?{name}=1699920000 → {r.status_code}")
    assert not accepted, "\n".join(accepted)


def test_the_batch_size_limit_is_in_the_document(
    client: TestClient, settings: Any, make_client: Callable[..., TestClient]
) -> None:
    def max_items(c: TestClient) -> Any:
        return c.get("/openapi.json").json()["components"]["schemas"]["BatchCreate"]["properties"]["items"][
            "maxItems"
        ]

    assert max_items(client) == settings.batch_max_items
    assert max_items(make_client(batch_max_items=3)) == 3
