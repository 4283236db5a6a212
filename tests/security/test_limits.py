"""Limits: body size (413), page size, rate limits on public endpoints (429 + Retry-After), and every list
paginated."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from loanfund.app import create_app
from loanfund.core.auth import authenticate, bearer
from loanfund.core.config import Settings
from loanfund.core.db import get_session
from loanfund.core.ratelimit import limit_public
from tests.factories import Caller, application_payload
from tests.security.conftest import World, api_routes, dependency_calls

LIMIT = 1024

# GET routes that answer a bare JSON array, and why that is fine. Anything else that lists must be a Page.
UNPAGED = {
    # The dated LPR table: one row per monthly LPR fixing since 2019 (~12 a year). Clients need all of it
    # to apply the rate cap on any date, and it is small enough to send whole.
    "/api/v1/rates/lpr": "small fixed reference table",
    # Credit line by grade, one version per decision of the bureau (a few per year), five lines each.
    "/api/v1/rates/credit-lines": "small fixed reference table",
}


# --- request body size ---------------------------------------------------------------------------------


def test_body_over_the_limit_with_content_length_is_413(
    make_client: Callable[..., TestClient], officer: Caller
) -> None:
    small = make_client(max_body_bytes=LIMIT)
    r = small.post("/api/v1/banks", content=b"x" * (LIMIT + 1), headers=officer.headers)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    # just at the limit the body is read (and, not being JSON, refused as malformed)
    assert small.post("/api/v1/banks", content=b"x" * LIMIT, headers=officer.headers).status_code == 422


def test_chunked_body_without_content_length_is_413(
    make_client: Callable[..., TestClient], officer: Caller
) -> None:
    small = make_client(max_body_bytes=LIMIT)

    def chunks() -> Iterator[bytes]:
        for _ in range(4):
            yield b'{"x": "' + b"y" * 400 + b'"}'

    r = small.post("/api/v1/banks", content=chunks(), headers=officer.headers)
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


def test_streamed_chunks_are_cut_off_at_the_limit(settings: Settings, engine: Engine) -> None:
    """At the ASGI level: chunks arrive one by one with no Content-Length; the app answers 413 as soon as
    they add up to more than the limit and reads no further."""
    app = create_app(settings.model_copy(update={"max_body_bytes": LIMIT}), engine)
    sent: list[dict[str, Any]] = []
    chunks = [b"a" * 400] * 10
    served = 0

    async def receive() -> dict[str, Any]:
        nonlocal served
        if served < len(chunks):
            served += 1
            return {"type": "http.request", "body": chunks[served - 1], "more_body": served < len(chunks)}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/applications",
        "raw_path": b"/api/v1/applications",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")],
        "client": ("203.0.113.9", 5000),
        "server": ("testserver", 80),
        "state": {},
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert served == 3  # 1,200 bytes > 1,024: the fourth chunk was never asked for


# --- page size ----------------------------------------------------------------------------------------


def test_page_size_is_capped_and_the_cursor_walks_every_row(
    client: TestClient, world: World, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "page_size_max", 3)
    monkeypatch.setattr(settings, "page_size_default", 2)
    headers = world.headers("admin")
    everything: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 10_000}
        if cursor is not None:
            params["cursor"] = cursor
        page = client.get("/api/v1/keys", params=params, headers=headers).json()
        assert len(page["items"]) <= 3
        everything += [k["id"] for k in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(everything) > 3, "the world should hold more keys than one page"
    assert everything == sorted(set(everything))
    assert len(client.get("/api/v1/keys", headers=headers).json()["items"]) == 2  # the default
    for bad in ({"limit": 0}, {"limit": 10_001}, {"cursor": "-1"}, {"cursor": "x"}):
        assert client.get("/api/v1/keys", params=bad, headers=headers).status_code == 422


def test_every_list_is_paginated(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
        return schema

    problems = []
    pages = 0
    for path, item in doc["paths"].items():
        get = item.get("get")
        if get is None:
            continue
        ok = get["responses"].get("200", {}).get("content", {}).get("application/json", {})
        body = resolve(ok.get("schema", {}))
        params = {p["name"] for p in get.get("parameters", []) if p["in"] == "query"}
        if body.get("type") == "array":
            if path not in UNPAGED:
                problems.append(f"GET {path} answers a bare array: return a Page (core/pagination.py)")
        elif "items" in body.get("properties", {}):
            pages += 1
            if not {"limit", "cursor"} <= params or "next_cursor" not in body["properties"]:
                problems.append(f"GET {path} returns a list without `limit`/`cursor`: use `Pagination`")
    assert not problems, "\n".join(problems)
    assert pages >= 10
    assert set(UNPAGED) <= set(doc["paths"]), "UNPAGED names a route that no longer exists"


# --- rate limits ----------------------------------------------------------------------------------------


def test_every_public_endpoint_is_rate_limited_and_says_so(app: FastAPI, client: TestClient) -> None:
    """A route that takes no key (neither `authenticate` nor the bearer scheme among its dependencies) and
    touches the database is
    rate-limited, and its OpenAPI entry declares the 429."""
    doc = client.get("/openapi.json").json()
    problems = []
    limited = 0
    for (method, path), route in api_routes(app).items():
        calls = dependency_calls(route.dependant)
        takes_key = authenticate in calls or bearer in calls  # reports authenticate in their own session
        public_and_stateful = not takes_key and get_session in calls
        if limit_public in calls:
            limited += 1
            if "429" not in doc["paths"][path][method.lower()]["responses"]:
                problems.append(f"{method} {path} is rate-limited but does not declare 429")
        elif public_and_stateful:
            problems.append(
                f"{method} {path} takes no key and is not rate-limited: add Depends(limit_public)"
            )
    assert not problems, "\n".join(problems)
    assert limited == 3


def test_rate_limit_is_per_client_address(
    make_client: Callable[..., TestClient], world: World, settings: Settings
) -> None:
    c = make_client(public_rate_limit_per_minute=2)
    app = c.app
    assert isinstance(app, FastAPI)
    url = f"/api/v1/applications/{world.application_no}"
    token = world.headers("enterprise")
    first = TestClient(app, client=("198.51.100.1", 1000))
    second = TestClient(app, client=("198.51.100.2", 1000))
    assert [first.get(url, headers=token).status_code for _ in range(2)] == [200, 200]
    refused = first.get(url, headers=token)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["error"]["details"]["retry_after_s"] == int(refused.headers["Retry-After"])
    # another address has its own budget
    assert second.get(url, headers=token).status_code == 200
    body = application_payload(world.credit_code, world.bank_a.name)
    assert second.post("/api/v1/applications", json=body).status_code == 201
    assert second.post("/api/v1/applications", json=body).status_code == 429
    # keyed endpoints are not limited
    for _ in range(5):
        assert first.get("/api/v1/loans", headers=world.headers("bank_own")).status_code == 200
