"""Deliveries to a real receiver on 127.0.0.1 that verifies every signature: the events of a paid claim,
retries with the same webhook-id, 410, Retry-After, the failing-days rule, secret rotation, and the
limits on what a webhook may do (redirects, size, time, addresses)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from loanfund.core.config import Settings
from loanfund.core.db import utcnow
from loanfund.webhooks.models import WebhookDelivery, WebhookEndpoint
from loanfund.webhooks.worker import Worker
from tests.conftest import NplLoan
from tests.factories import Caller
from tests.webhooks.conftest import Drain, EndpointMaker
from tests.webhooks.receiver import Receiver

ENDPOINTS = "/api/v1/webhooks/endpoints"


def _ping(client: TestClient, caller: Caller, endpoint_id: int) -> dict[str, Any]:
    r = client.post(f"{ENDPOINTS}/{endpoint_id}/test", headers=caller.headers)
    assert r.status_code == 202, r.text
    delivery: dict[str, Any] = r.json()
    assert (delivery["state"], delivery["event_type"], delivery["attempts"]) == ("pending", "ping", [])
    return delivery


def _due_now(session: Session) -> None:
    session.execute(update(WebhookDelivery).values(next_attempt_at=utcnow()))
    session.commit()


def _log(client: TestClient, caller: Caller, endpoint_id: int) -> list[dict[str, Any]]:
    r = client.get(f"{ENDPOINTS}/{endpoint_id}/deliveries", headers=caller.headers)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


@pytest.mark.usefixtures("fund_10m", "lenient_breakers")
def test_a_claim_paid_through_the_api_reaches_the_receiver_signed(
    client: TestClient,
    bank_a: Caller,
    officer: Caller,
    approver: Caller,
    npl_loan: NplLoan,
    endpoint: EndpointMaker,
    receiver: Receiver,
    drain: Drain,
) -> None:
    loan = npl_loan(bank_a, "1000000")
    endpoint(bank_a)
    r = client.post(
        "/api/v1/claims",
        json={"loan_id": loan["id"], "principal_at_default": "1000000"},
        headers=bank_a.headers,
    )
    assert r.status_code == 201, r.text
    claim_id = r.json()["id"]
    approved = client.post(
        f"/api/v1/claims/{claim_id}/approve",
        json={"amount": "700000", "reason": "collateral documents incomplete"},
        headers=officer.headers,
    )
    assert approved.status_code == 200, approved.text
    paid = client.post(f"/api/v1/claims/{claim_id}/pay", headers=approver.headers)
    assert paid.status_code == 200, paid.text
    assert receiver.received == []  # nothing is sent from the request itself

    assert drain() == 3
    got = {m.type: m for m in receiver.wait_for(3)}
    assert sorted(got) == ["claim.approved", "claim.paid", "loan.state_changed"]
    for m in got.values():
        assert m.verified_by == receiver.secrets  # standardwebhooks verified the signature
        assert m.json["id"] == m.webhook_id
        assert m.answered == 200
    message = got["claim.paid"].json
    assert set(message) == {"type", "id", "occurred_at", "data"}
    api = client.get(f"/api/v1/claims/{claim_id}", headers=bank_a.headers).json()
    api.pop("recoveries")
    assert message["data"] == api  # the claim's API representation
    assert (message["data"]["state"], message["data"]["paid"]) == ("paid", "700000.00")
    approval = got["claim.approved"].json["data"]
    assert (approval["claimed"], approval["approved"]) == ("800000.00", "700000.00")
    assert approval["reduction_reason"] == "collateral documents incomplete"
    loan_event = got["loan.state_changed"].json["data"]
    assert (loan_event["id"], loan_event["state"], loan_event["previous_state"]) == (
        loan["id"],
        "compensated",
        "non_performing",
    )


def test_a_receiver_failing_twice_gets_the_event_on_the_third_attempt_with_the_same_id(
    client: TestClient, bank_a: Caller, endpoint: EndpointMaker, receiver: Receiver, drain: Drain
) -> None:
    created, _ = endpoint(bank_a)
    receiver.script.extend([500, 500])
    delivery = _ping(client, bank_a, created["id"])
    assert drain() == 3
    messages = receiver.wait_for(3)
    assert [m.answered for m in messages] == [500, 500, 200]
    assert len({m.webhook_id for m in messages}) == 1
    assert messages[0].webhook_id == delivery["event_id"]
    assert len({m.body for m in messages}) == 1  # byte for byte the same body
    assert all(m.verified_by for m in messages)
    [logged] = _log(client, bank_a, created["id"])
    assert logged["state"] == "succeeded"
    assert [a["status_code"] for a in logged["attempts"]] == [500, 500, 200]
    assert logged["attempts"][0]["response_excerpt"] == "ok"
    assert all(a["duration_ms"] >= 0 for a in logged["attempts"])
    assert client.get(f"{ENDPOINTS}/{created['id']}", headers=bank_a.headers).json()["failing_since"] is None


def test_a_receiver_answering_410_disables_the_endpoint(
    client: TestClient, bank_a: Caller, endpoint: EndpointMaker, receiver: Receiver, drain: Drain
) -> None:
    created, _ = endpoint(bank_a)
    receiver.script.append(410)
    _ping(client, bank_a, created["id"])
    assert drain() == 1
    after = client.get(f"{ENDPOINTS}/{created['id']}", headers=bank_a.headers).json()
    assert after["enabled"] is False
    assert "410" in after["disabled_reason"]
    [logged] = _log(client, bank_a, created["id"])
    assert logged["state"] == "failed"
    assert "endpoint disabled" in logged["attempts"][0]["note"]
    # nothing more is sent to it, and it must be enabled again to be tested
    r = client.post(f"{ENDPOINTS}/{created['id']}/test", headers=bank_a.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "webhook_endpoint_disabled")
    r = client.patch(f"{ENDPOINTS}/{created['id']}", json={"enabled": True}, headers=bank_a.headers)
    assert (r.status_code, r.json()["enabled"], r.json()["disabled_reason"]) == (200, True, None)
    _ping(client, bank_a, created["id"])
    assert drain() == 1
    assert [m.answered for m in receiver.received] == [410, 200]


def test_retry_after_on_503_sets_the_next_attempt(
    client: TestClient,
    bank_a: Caller,
    endpoint: EndpointMaker,
    receiver: Receiver,
    worker: Worker,
    session: Session,
) -> None:
    created, _ = endpoint(bank_a)
    receiver.script.append((503, {"Retry-After": "120"}))
    delivery = _ping(client, bank_a, created["id"])
    before = utcnow()
    assert worker.run_once() == 1
    session.expire_all()
    row = session.get(WebhookDelivery, delivery["id"])
    assert row is not None
    assert (row.state.value, row.last_status) == ("pending", 503)
    wait = (row.next_attempt_at - before).total_seconds()
    assert 118 <= wait <= 122  # not the schedule's 0.05 s
    assert worker.run_once() == 0


def test_an_endpoint_failing_for_days_is_disabled_and_the_bank_told_in_its_log(
    client: TestClient,
    bank_a: Caller,
    endpoint: EndpointMaker,
    receiver: Receiver,
    worker: Worker,
    session: Session,
    hook_settings: Settings,
) -> None:
    created, _ = endpoint(bank_a)
    receiver.script.extend([500, 500])
    _ping(client, bank_a, created["id"])
    assert worker.run_once() == 1
    row = session.get(WebhookEndpoint, created["id"])
    assert row is not None
    session.refresh(row)
    assert row.failing_since is not None
    assert row.enabled
    # the failing streak began longer ago than the setting allows
    row.failing_since = utcnow() - timedelta(days=hook_settings.webhook_disable_after_days, seconds=1)
    session.commit()
    _due_now(session)
    assert worker.run_once() == 1
    after = client.get(f"{ENDPOINTS}/{created['id']}", headers=bank_a.headers).json()
    assert after["enabled"] is False
    assert "days" in after["disabled_reason"]
    [logged] = _log(client, bank_a, created["id"])
    assert [a["status_code"] for a in logged["attempts"]] == [500, 500]
    assert logged["attempts"][0]["note"] is None
    assert logged["attempts"][1]["note"].startswith("endpoint disabled: deliveries have failed since")
    assert logged["state"] == "pending"  # waits for the endpoint to be enabled again
    assert worker.run_once() == 0


def test_a_delivery_fails_once_the_schedule_is_used_up(
    client: TestClient, bank_a: Caller, endpoint: EndpointMaker, receiver: Receiver, drain: Drain
) -> None:
    created, _ = endpoint(bank_a)
    receiver.script.extend([500] * 10)
    _ping(client, bank_a, created["id"])
    assert drain() == 5  # the first attempt and one per step of the schedule (four)
    [logged] = _log(client, bank_a, created["id"])
    assert logged["state"] == "failed"
    assert logged["attempts"][-1]["note"] == "given up after 5 attempts"
    assert len({m.webhook_id for m in receiver.received}) == 1
    # a manual retry sends it again, with the same webhook-id and a fresh schedule
    r = client.post(f"{ENDPOINTS}/deliveries/{logged['id']}/retry", headers=bank_a.headers)
    assert (r.status_code, r.json()["state"]) == (202, "pending")
    receiver.script.clear()
    assert drain() == 1
    assert receiver.received[-1].webhook_id == receiver.received[0].webhook_id
    assert receiver.received[-1].answered == 200
    assert _log(client, bank_a, created["id"])[0]["state"] == "succeeded"


def test_a_rotated_secret_verifies_with_old_and_new_during_the_overlap(
    client: TestClient,
    bank_a: Caller,
    endpoint: EndpointMaker,
    receiver: Receiver,
    drain: Drain,
    session: Session,
) -> None:
    created, old = endpoint(bank_a)
    r = client.post(f"{ENDPOINTS}/{created['id']}/rotate-secret", headers=bank_a.headers)
    assert r.status_code == 200, r.text
    new = r.json()["secret"]
    assert new != old
    assert new.startswith("whsec_")
    assert r.json()["previous_secret_expires_at"] is not None
    receiver.secrets = [old, new]
    _ping(client, bank_a, created["id"])
    drain()
    [during] = receiver.wait_for(1)
    assert during.verified_by == [old, new]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    # once the overlap is over only the new secret signs
    row = session.get(WebhookEndpoint, created["id"])
    assert row is not None
    row.previous_secret_expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    _ping(client, bank_a, created["id"])
    drain()
    after = receiver.wait_for(2)[1]
    assert after.verified_by == [new]


def test_redirects_are_not_followed_and_answers_are_read_up_to_the_limit(
    client: TestClient,
    bank_a: Caller,
    endpoint: EndpointMaker,
    receiver: Receiver,
    worker: Worker,
    hook_settings: Settings,
    session: Session,
) -> None:
    created, _ = endpoint(bank_a)
    receiver.script.append((302, {"Location": receiver.url + "/elsewhere"}))
    receiver.script.append((200, {}, b"x" * 1_000_000))
    _ping(client, bank_a, created["id"])
    assert worker.run_once() == 1
    assert len(receiver.received) == 1  # the redirect was not followed
    [logged] = _log(client, bank_a, created["id"])
    assert (logged["state"], logged["attempts"][0]["status_code"]) == ("pending", 302)
    _due_now(session)
    assert worker.run_once() == 1  # the next attempt gets a megabyte back
    [logged] = _log(client, bank_a, created["id"])
    assert [(a["status_code"], len(a["response_excerpt"])) for a in logged["attempts"]] == [
        (302, 2),
        (200, hook_settings.webhook_response_max_bytes),
    ]


def test_a_receiver_too_slow_times_out(
    client: TestClient,
    bank_a: Caller,
    endpoint: EndpointMaker,
    receiver: Receiver,
    worker: Worker,
    hook_settings: Settings,
) -> None:
    hook_settings.webhook_timeout_s = 0.3
    slow = Worker(hook_settings, worker.sessions, concurrency=1)
    created, _ = endpoint(bank_a)
    receiver.delay_s = 1.0
    _ping(client, bank_a, created["id"])
    assert slow.run_once() == 1
    slow.sender.close()
    [logged] = _log(client, bank_a, created["id"])
    attempt = logged["attempts"][0]
    assert (attempt["status_code"], attempt["error"]) == (None, "timed out after 0.3 s")
    assert attempt["duration_ms"] < 900


def test_private_addresses_are_refused_unless_allowed(
    client: TestClient,
    bank_a: Caller,
    endpoint: EndpointMaker,
    receiver: Receiver,
    worker: Worker,
    hook_settings: Settings,
    session: Session,
) -> None:
    created, _ = endpoint(bank_a)  # registered while private addresses are allowed
    hook_settings.webhook_allow_private_targets = False
    for url in ("http://127.0.0.1:9/x", "http://10.1.2.3/x", "http://[::1]/x", "http://localhost/x"):
        r = client.post(ENDPOINTS, json={"url": url}, headers=bank_a.headers)
        assert (r.status_code, r.json()["error"]["code"]) == (422, "webhook_url_not_allowed"), url
    # a host name is checked when the connection is made, with every address it resolves to
    row = session.get(WebhookEndpoint, created["id"])
    assert row is not None
    row.url = receiver.url.replace("127.0.0.1", "localhost")
    session.commit()
    guarded = Worker(hook_settings, worker.sessions, concurrency=1)
    _ping(client, bank_a, created["id"])
    _ping(client, bank_a, created["id"])
    assert guarded.run_once(limit=5) == 2
    guarded.sender.close()
    assert receiver.received == []
    for logged in _log(client, bank_a, created["id"]):
        error = logged["attempts"][0]["error"]
        assert error.startswith("ConnectError: address not allowed: localhost is ")
        assert "loopback" in error
    # the same endpoint is reached when private addresses are allowed
    hook_settings.webhook_allow_private_targets = True
    _due_now(session)
    assert worker.run_once() == 2
    assert len(receiver.received) == 2


def test_only_https_in_production(hook_settings: Settings) -> None:
    from loanfund.webhooks.addresses import url_problem

    prod = hook_settings.model_copy(update={"env": "prod", "webhook_allow_private_targets": False})
    assert url_problem(prod, "http://hooks.bank.example.cn/in") == "the URL must be https"
    assert url_problem(prod, "https://hooks.bank.example.cn/in") is None
    assert url_problem(prod, "https://user:pw@hooks.bank.example.cn/in") is not None
    assert url_problem(prod, "https://169.254.169.254/latest") == "the URL's address is link-local"
    assert url_problem(hook_settings, "http://hooks.bank.example.cn/in") is None  # test: http allowed


def test_attempts_of_a_deleted_endpoint_are_dropped(
    client: TestClient, bank_a: Caller, endpoint: EndpointMaker, worker: Worker, session: Session
) -> None:
    created, _ = endpoint(bank_a)
    _ping(client, bank_a, created["id"])
    claimed = worker.claim(5)
    assert len(claimed) == 1
    assert client.delete(f"{ENDPOINTS}/{created['id']}", headers=bank_a.headers).status_code == 204
    outcome = worker.sender.send(claimed[0][0])
    worker.record([(claimed[0][0], claimed[0][1], outcome)])
    assert session.scalars(select(WebhookDelivery)).all() == []
