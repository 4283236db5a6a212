"""Webhook tests: a real receiver on 127.0.0.1, settings that let a webhook reach it with a short retry
schedule, and a worker running in the test's process on the test's (rolled-back) transaction."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from loanfund.core.config import Settings
from loanfund.core.db import utcnow
from loanfund.webhooks.models import DeliveryState, WebhookDelivery, WebhookEndpoint
from loanfund.webhooks.worker import Worker
from tests.factories import Caller
from tests.webhooks.receiver import Receiver

TEST_WEBHOOK_SETTINGS: dict[str, Any] = {
    "webhook_allow_private_targets": True,  # the receiver listens on 127.0.0.1
    "webhook_retry_schedule_s": [0.05, 0.05, 0.05, 0.05],
    "webhook_retry_jitter": 0.0,
    "webhook_timeout_s": 3.0,
    "webhook_claim_lease_s": 10.0,
}


@pytest.fixture
def hook_settings(settings: Settings) -> Iterator[Settings]:
    """The suite's settings (the app's too) with TEST_WEBHOOK_SETTINGS, restored afterwards."""
    saved = {name: getattr(settings, name) for name in TEST_WEBHOOK_SETTINGS}
    for name, value in TEST_WEBHOOK_SETTINGS.items():
        setattr(settings, name, value)
    yield settings
    for name, value in saved.items():
        setattr(settings, name, value)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def worker(hook_settings: Settings, session_maker: sessionmaker[Session]) -> Iterator[Worker]:
    w = Worker(hook_settings, session_maker, concurrency=4)
    yield w
    w.sender.close()


Drain = Callable[..., int]


@pytest.fixture
def drain(worker: Worker, session: Session) -> Drain:
    """Run the worker until nothing is due within the next two seconds; the number of attempts made."""

    def run(timeout: float = 15) -> int:
        deadline = time.monotonic() + timeout
        attempts = 0
        while time.monotonic() < deadline:
            sent = worker.run_once()
            attempts += sent
            if sent:
                continue
            session.expire_all()
            due = session.scalar(
                select(func.min(WebhookDelivery.next_attempt_at))
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(WebhookDelivery.state == DeliveryState.pending, WebhookEndpoint.enabled)
            )
            if due is None or due > utcnow() + timedelta(seconds=2):
                return attempts
            time.sleep(max(0.0, (due - utcnow()).total_seconds()) + 0.01)
        raise AssertionError(f"deliveries still due after {timeout} s")

    return run


EndpointMaker = Callable[..., tuple[dict[str, Any], str]]


@pytest.fixture
def endpoint(client: TestClient, hook_settings: Settings, receiver: Receiver) -> EndpointMaker:
    """Register the receiver as an endpoint of `caller` through the API; the endpoint and its secret
    (which the receiver then verifies with)."""

    def make(caller: Caller, **fields: Any) -> tuple[dict[str, Any], str]:
        body = {"url": receiver.url, **fields}
        r = client.post("/api/v1/webhooks/endpoints", json=body, headers=caller.headers)
        assert r.status_code == 201, r.text
        created = r.json()
        secret = created.pop("secret")
        receiver.secrets.append(secret)
        return created, secret

    return make
