"""Secrets: keys, status tokens and webhook signing secrets appear once — in the response that issued
them — and nowhere else: not in a log line (the app's, SQLAlchemy's at DEBUG, anyone's), not in the
audit log or any other table, not in any other response. Plus security headers on every kind of
response, and CORS closed by default."""

from __future__ import annotations

import base64
import inspect
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

import loanfund.models  # noqa: F401  (every table, for the plaintext scan)
from loanfund.app import create_app
from loanfund.core.clock import business_today
from loanfund.core.config import Settings
from loanfund.core.db import Base
from loanfund.core.logging import JsonFormatter
from loanfund.webhooks.worker import Worker
from tests.factories import application_payload, enterprise_payload
from tests.security.conftest import World
from tests.webhooks.receiver import Receiver

LOGGERS = ["loanfund", "sqlalchemy.engine", "sqlalchemy.pool", "uvicorn", "uvicorn.access", "uvicorn.error"]


class LogCapture(logging.Handler):
    """Every record, formatted as the app formats it (JSON with extras) and as plain text."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.loggers: set[str] = set()
        self._json = JsonFormatter()
        self._plain = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        self.loggers.add(record.name)
        self.lines.append(self._json.format(record))
        self.lines.append(self._plain.format(record))


@pytest.fixture
def log_capture() -> Iterator[LogCapture]:
    capture = LogCapture()
    targets = [logging.getLogger(), *(logging.getLogger(n) for n in LOGGERS)]
    levels = [lg.level for lg in targets]
    for lg in targets:
        lg.setLevel(logging.DEBUG)
        lg.addHandler(capture)
    try:
        yield capture
    finally:
        for lg, level in zip(targets, levels, strict=True):
            lg.removeHandler(capture)
            lg.setLevel(level)


@pytest.fixture
def connection(log_capture: LogCapture, connection: Connection) -> Connection:
    """The test's connection, opened once the capture is in place (a connection decides whether it
    logs SQL when it opens)."""
    return connection


@dataclass
class Recorder:
    client: TestClient
    responses: list[httpx.Response] = field(default_factory=list)

    def __call__(self, method: str, url: str, expect: int, **kwargs: Any) -> httpx.Response:
        r = self.client.request(method, url, **kwargs)
        assert r.status_code == expect, f"{method} {url}: {r.status_code} {r.text}"
        self.responses.append(r)
        return r


def _last_month_end(today: date) -> date:
    return today.replace(day=1) - timedelta(days=1)


def test_keys_and_tokens_are_shown_once_and_never_logged_or_stored(
    client: TestClient,
    world: World,
    settings: Settings,
    session: Session,
    log_capture: LogCapture,
) -> None:
    call = Recorder(client)
    admin = world.headers("admin")
    today = business_today(settings)

    # staff key
    staff = call("POST", "/api/v1/staff", 201, json={"name": "Secret Sam", "role": "officer"}, headers=admin)
    issued_staff = call("POST", f"/api/v1/staff/{staff.json()['id']}/keys", 201, json={}, headers=admin)
    staff_key = issued_staff.json()["key"]
    officer = {"Authorization": f"Bearer {staff_key}"}

    # bank key
    bank = call("POST", "/api/v1/banks", 201, json={"code": "SECRETBANK", "name": "S"}, headers=officer)
    terms = {"allow_contracts_without_application": True}
    call("PATCH", f"/api/v1/banks/{bank.json()['id']}", 200, json=terms, headers=officer)
    issued_bank = call("POST", f"/api/v1/banks/{bank.json()['id']}/keys", 201, json={}, headers=admin)
    bank_key = issued_bank.json()["key"]
    as_bank = {"Authorization": f"Bearer {bank_key}"}

    # an application and its status token
    code = call("POST", "/api/v1/enterprises", 201, json=enterprise_payload(), headers=officer).json()[
        "credit_code"
    ]
    submitted = call("POST", "/api/v1/applications", 201, json=application_payload(code, "SECRETBANK"))
    token = submitted.json()["status_token"]
    number = submitted.json()["application_no"]
    call("GET", f"/api/v1/applications/{number}", 200, headers={"Authorization": f"Bearer {token}"})
    call("GET", f"/api/v1/applications/{number}", 404, headers={"Authorization": "Bearer lft_wrong"})

    # the bank's side: approve, contract, events, an idempotent batch (and its replay), a status report
    idem = {"Idempotency-Key": "secret-scenario-approve"}
    approval = {"amount": "500000.00", "term_months": 12, "annual_rate_pct": "3.00"}
    call("GET", "/api/v1/bank/applications", 200, headers=as_bank)
    call(
        "POST",
        f"/api/v1/bank/applications/{number}/approve",
        200,
        json=approval,
        headers={**as_bank, **idem},
    )
    contract = {
        "bank_loan_ref": "SECRET-1",
        "credit_code": code,
        "application_no": number,
        "amount": "500000.00",
        "annual_rate_pct": "3.00",
        "start_date": today.isoformat(),
        "maturity_date": (today + timedelta(days=300)).isoformat(),
    }
    loan = call("POST", "/api/v1/loans", 201, json=contract, headers=as_bank).json()
    event = {"bank_event_ref": "SECRET-D1", "date": today.isoformat(), "amount": "500000.00"}
    call("POST", f"/api/v1/loans/{loan['id']}/disbursements", 201, json=event, headers=as_bank)
    batch = {
        "items": [
            {
                "type": "contract",
                "bank_loan_ref": "SECRET-OLD",
                "credit_code": code,
                "amount": "200000.00",
                "annual_rate_pct": "4.35",
                "start_date": "2021-03-01",
                "maturity_date": "2022-02-28",
            },
            {
                "type": "disbursement",
                "bank_loan_ref": "SECRET-OLD",
                "bank_event_ref": "SECRET-OLD-D",
                "date": "2021-03-02",
                "amount": "200000.00",
            },
        ]
    }
    batch_headers = {**as_bank, "Idempotency-Key": "secret-scenario-batch"}
    call("POST", "/api/v1/loans/batch", 200, json=batch, headers=batch_headers)
    replay = call("POST", "/api/v1/loans/batch", 200, json=batch, headers=batch_headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    month_end = _last_month_end(today)
    report = {
        "month_end": month_end.isoformat(),
        "loans": [{"bank_loan_ref": "SECRET-OLD", "outstanding_principal": "200000.00", "days_past_due": 0}],
    }
    call("POST", "/api/v1/status-reports", 201, json=report, headers=as_bank)

    # reads, including every list that describes keys
    keys = call("GET", "/api/v1/keys", 200, params={"limit": 500}, headers=admin).json()["items"]
    assert keys
    assert all("key" not in k for k in keys)
    assert {k["prefix"] for k in keys} >= {staff_key[:10], bank_key[:10]}
    call("GET", "/api/v1/keys", 200, params={"bank_id": bank.json()["id"]}, headers=admin)
    call("GET", "/api/v1/staff", 200, headers=admin)
    call("GET", "/api/v1/audit", 200, params={"limit": 500}, headers=officer)
    call("GET", f"/api/v1/applications/{number}/detail", 200, headers=officer)
    call("GET", f"/api/v1/loans/{loan['id']}", 200, headers=as_bank)
    call("GET", "/api/v1/loans", 401, headers={"Authorization": f"Bearer {token}"})  # a token is no key
    call("POST", f"/api/v1/keys/{issued_bank.json()['id']}/revoke", 200, headers=admin)
    call("GET", "/api/v1/banks/me", 401, headers=as_bank)

    secrets = {
        "staff key": (staff_key, issued_staff),
        "bank key": (bank_key, issued_bank),
        "status token": (token, submitted),
    }
    # the keys the world's callers use are sent on every request above: they must not leak either
    fixture_keys = {f"{kind} key": world.caller(kind).key for kind in ("admin", "bank_own")}  # type: ignore[union-attr]

    # 1. no log line
    assert {"loanfund.http", "sqlalchemy.engine.Engine"} <= log_capture.loggers, log_capture.loggers
    logged = "\n".join(log_capture.lines)
    for name, value in {**{n: v for n, (v, _) in secrets.items()}, **fixture_keys}.items():
        assert value not in logged, f"the {name} was logged"

    # 2. no table holds one in plain text (the audit log included)
    session.expire_all()
    stored = []
    for table in Base.metadata.sorted_tables:
        stored += [repr(tuple(row)) for row in session.execute(select(table))]
    assert any("key.issue" in s for s in stored)
    dump = "\n".join(stored)
    for name, (value, _) in secrets.items():
        assert value not in dump, f"the {name} is stored in plain text"

    # 3. no response but the one that issued it
    for name, (value, issuer) in secrets.items():
        for r in call.responses:
            if r is issuer:
                continue
            seen = r.text + "".join(f"{k}: {v}\n" for k, v in r.headers.items())
            assert value not in seen, f"the {name} appears in {r.request.method} {r.request.url}"


def test_webhook_signing_secrets_are_shown_once_and_never_logged_or_stored(
    client: TestClient,
    world: World,
    settings: Settings,
    session: Session,
    session_maker: sessionmaker[Session],
    log_capture: LogCapture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An endpoint's secret, and the one that replaces it, appear in the response that issued each and
    nowhere else — though the worker signs real deliveries with both while the log is at DEBUG."""
    monkeypatch.setattr(settings, "webhook_allow_private_targets", True)  # the receiver is on 127.0.0.1
    receiver = Receiver()
    worker = Worker(settings, session_maker, concurrency=2)
    try:
        call = Recorder(client)
        bank, analyst = world.headers("bank_own"), world.headers("analyst")
        paused = {"enabled": False}  # the world's endpoint: this test's worker sends only to the receiver
        call(
            "PATCH", f"/api/v1/webhooks/endpoints/{world.webhook_endpoint_id}", 200, json=paused, headers=bank
        )
        created = call("POST", "/api/v1/webhooks/endpoints", 201, json={"url": receiver.url}, headers=bank)
        eid = created.json()["id"]
        rotated = call("POST", f"/api/v1/webhooks/endpoints/{eid}/rotate-secret", 200, headers=bank)
        receiver.secrets = [created.json()["secret"], rotated.json()["secret"]]
        call("POST", f"/api/v1/webhooks/endpoints/{eid}/test", 202, headers=bank)
        assert worker.run_once() == 1
        [message] = receiver.wait_for(1)
        assert message.verified_by == receiver.secrets  # both secrets really signed
        for headers in (bank, analyst):
            call("GET", f"/api/v1/webhooks/endpoints/{eid}", 200, headers=headers)
            call("GET", "/api/v1/webhooks/endpoints", 200, headers=headers)
            call("GET", f"/api/v1/webhooks/endpoints/{eid}/deliveries", 200, headers=headers)
        call("PATCH", f"/api/v1/webhooks/endpoints/{eid}", 200, json={"description": "x"}, headers=bank)
        call("GET", "/api/v1/audit", 200, params={"limit": 500}, headers=analyst)
    finally:
        worker.sender.close()
        receiver.close()

    secrets = {"first secret": created, "rotated secret": rotated}
    assert {"loanfund.webhooks", "sqlalchemy.engine.Engine"} <= log_capture.loggers, log_capture.loggers
    logged = "\n".join(log_capture.lines)
    session.expire_all()
    dump = "\n".join(
        repr(tuple(row)) for table in Base.metadata.sorted_tables for row in session.execute(select(table))
    )
    assert "webhook_endpoint.rotate_secret" in dump
    for name, issuer in secrets.items():
        value = issuer.json()["secret"]
        raw = base64.b64decode(value.removeprefix("whsec_"))
        assert value not in logged, f"the {name} was logged"
        assert value not in dump, f"the {name} is stored in plain text"
        assert raw.hex() not in dump
        for r in call.responses:
            if r is not issuer:
                assert value not in r.text, f"the {name} appears in {r.request.method} {r.request.url}"


# --- security headers on every kind of response -----------------------------------------------------

BASE_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
    "strict-transport-security": "max-age=31536000; includeSubDomains",
}
from loanfund.web.templating import CONTENT_SECURITY_POLICY  # noqa: E402

API_HEADERS = {
    **BASE_HEADERS,
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "cache-control": "no-store",
}


@pytest.fixture
def odd_app(settings: Settings, engine: Engine, client: TestClient) -> FastAPI:
    """An app with two extra routes that fail the way only a bug or an outage would."""
    # two public requests a minute: the 422 below uses one, the status read the other, then 429
    changes = {"max_body_bytes": 1024, "public_rate_limit_per_minute": 2}
    app = create_app(settings.model_copy(update=changes), engine)
    app.state.sessionmaker = client.app.state.sessionmaker  # type: ignore[attr-defined]

    def boom() -> None:
        raise RuntimeError("a bug")

    def outage() -> None:
        raise OperationalError("SELECT 1", {}, ConnectionError("database down"))

    app.add_api_route("/boom", boom)
    app.add_api_route("/outage", outage)
    return app


def test_security_headers_on_every_kind_of_response(
    odd_app: FastAPI, world: World, make_client: Callable[..., TestClient]
) -> None:
    c = TestClient(odd_app, raise_server_exceptions=False)
    token = world.headers("enterprise")
    status_url = f"/api/v1/applications/{world.application_no}"
    answers = {
        "200": c.get("/healthz"),
        "200 with a key": c.get("/api/v1/loans", headers=world.headers("bank_own")),
        "401": c.get("/api/v1/loans"),
        "403": c.get("/api/v1/keys", headers=world.headers("analyst")),
        "404 unknown route": c.get("/api/v1/nothing/here"),
        "404 record": c.get("/api/v1/loans/999999999", headers=world.headers("admin")),
        "405": c.delete("/healthz"),
        "413 by length": c.post("/api/v1/applications", content=b"x" * 2048),
        "413 chunked": c.post("/api/v1/applications", content=iter([b"x" * 800, b"x" * 800])),
        "422": c.post("/api/v1/applications", json={}),
        "429 first": c.get(status_url, headers=token),
        "429": c.get(status_url, headers=token),
        "500": c.get("/boom"),
        "503": c.get("/outage"),
    }
    statuses = {name: r.status_code for name, r in answers.items()}
    assert statuses == {
        "200": 200,
        "200 with a key": 200,
        "401": 401,
        "403": 403,
        "404 unknown route": 404,
        "404 record": 404,
        "405": 405,
        "413 by length": 413,
        "413 chunked": 413,
        "422": 422,
        "429 first": 200,
        "429": 429,
        "500": 500,
        "503": 503,
    }
    for name, r in answers.items():
        missing = {k: v for k, v in API_HEADERS.items() if r.headers.get(k) != v}
        assert not missing, f"{name}: {missing}"
        assert r.headers.get("x-request-id")
        assert "access-control-allow-origin" not in r.headers
    assert "a bug" not in answers["500"].text
    # a page (outside /api/) has the page policy: its own origin only, never another host
    page = c.get("/nothing/here")
    assert page.status_code == 404
    assert {k: page.headers.get(k) for k in BASE_HEADERS} == BASE_HEADERS
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["cache-control"] == "no-store"
    docs = c.get("/docs")
    assert docs.status_code == 200
    assert {k: docs.headers.get(k) for k in BASE_HEADERS} == BASE_HEADERS


# --- CORS -------------------------------------------------------------------------------------------

PORTAL = "https://portal.kjj.example.cn"


def _preflight(c: TestClient, origin: str) -> httpx.Response:
    return c.options(
        "/api/v1/loans",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Authorization",
        },
    )


def test_cors_is_closed_by_default(client: TestClient, world: World) -> None:
    r = _preflight(client, "https://evil.example")
    assert "access-control-allow-origin" not in r.headers
    assert r.status_code in (400, 405)
    r = client.get("/api/v1/loans", headers={**world.headers("bank_own"), "Origin": "https://evil.example"})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers


def test_cors_opens_only_to_a_configured_origin(make_client: Callable[..., TestClient], world: World) -> None:
    c = make_client(cors_origins=[PORTAL])
    ok = _preflight(c, PORTAL)
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == PORTAL
    assert "authorization" in ok.headers["access-control-allow-headers"].lower()
    assert ok.headers.get("access-control-allow-credentials") is None  # bearer keys, never cookies
    assert ok.headers["x-content-type-options"] == "nosniff"
    refused = _preflight(c, "https://evil.example")
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    r = c.get("/api/v1/loans", headers={**world.headers("bank_own"), "Origin": PORTAL})
    assert r.headers["access-control-allow-origin"] == PORTAL
    r = c.get("/api/v1/loans", headers={**world.headers("bank_own"), "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_keys_and_tokens_are_compared_in_constant_time(
    client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both secrets are checked by comparing their HMACs with `hmac.compare_digest` (core/security.same)."""
    from loanfund.applications import service as application_service
    from loanfund.core import auth, security

    assert "hmac.compare_digest" in inspect.getsource(security.same)
    compared: list[str] = []

    def spy(a: str, b: str) -> bool:
        compared.append(a)
        return security.same(a, b)

    monkeypatch.setattr(auth, "same", spy)
    monkeypatch.setattr(application_service, "same", spy)
    assert client.get("/api/v1/loans", headers=world.headers("bank_own")).status_code == 200
    assert len(compared) == 1
    url = f"/api/v1/applications/{world.application_no}"
    assert client.get(url, headers=world.headers("enterprise")).status_code == 200
    assert client.get(url, headers={"Authorization": "Bearer lft_wrong"}).status_code == 404
    assert len(compared) == 3
