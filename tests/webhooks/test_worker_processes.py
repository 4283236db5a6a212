"""`loanfund worker` as real processes on a fresh database of the suite's backend (committed data): one
killed with SIGKILL in the middle of a delivery loses nothing, and two on PostgreSQL deliver every
event exactly once between them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from loanfund.audit.service import SYSTEM
from loanfund.banks import service as bank_service
from loanfund.core.config import Settings
from loanfund.core.db import make_engine
from loanfund.core.migrations import upgrade
from loanfund.core.session import transaction
from loanfund.webhooks import outbox
from loanfund.webhooks import service as webhook_service
from loanfund.webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery
from loanfund.webhooks.schemas import EndpointCreate
from tests.servers import kill_group, stop_group
from tests.webhooks.receiver import Receiver

ROOT = Path(__file__).resolve().parents[2]
SECRET = "worker-processes-" + "s" * 40
LEASE_S = 3


@dataclass
class WorkerProcess:
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        fh = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loanfund.cli", "worker"],
            env=self.env,
            cwd=ROOT,
            stdout=fh,
            stderr=fh,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown, nothing recorded."""
        assert self.proc is not None
        kill_group(self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc)

    def attempts_logged(self) -> int:
        lines = [json.loads(x) for x in self.log.read_text().splitlines() if x.startswith("{")]
        return sum(1 for x in lines if x.get("msg") == "webhook attempt")


@dataclass
class Setup:
    settings: Settings
    engine: Engine
    bank_id: int
    workers: list[WorkerProcess]

    def emit(self, count: int) -> None:
        """`count` events for the bank, committed in one transaction."""
        events = [outbox.Outgoing(self.bank_id, outbox.EventType.claim_paid, {"n": n}) for n in range(count)]
        with transaction(self.engine) as session:
            assert outbox.emit_many(session, events) == count

    def wait_until(self, check: Callable[[Session], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with Session(self.engine) as s:
                if check(s):
                    return
            time.sleep(0.1)
        raise AssertionError(f"not reached in {timeout} s")


@pytest.fixture
def setup(fresh_database: str, tmp_path: Path, receiver: Receiver) -> Iterator[Setup]:
    upgrade(fresh_database)
    settings = Settings(
        env="test",
        database_url=fresh_database,
        secret_key=SecretStr(SECRET),
        webhook_allow_private_targets=True,
    )
    engine = make_engine(settings)
    with transaction(engine) as session:
        bank = bank_service.create_bank(
            session, SYSTEM, code="HOOKS", name="Hooks bank", fund_share=Decimal("0.80")
        )
        _, secret = webhook_service.create_endpoint(
            session, settings, SYSTEM, bank.id, EndpointCreate.model_validate({"url": receiver.url})
        )
        bank_id = bank.id
    receiver.secrets.append(secret)
    env = {
        **os.environ,
        "LOANFUND_ENV": "test",
        "LOANFUND_DATABASE_URL": fresh_database,
        "LOANFUND_SECRET_KEY": SECRET,
        "LOANFUND_LOG_LEVEL": "INFO",
        "LOANFUND_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "LOANFUND_WEBHOOK_TIMEOUT_S": "2",
        "LOANFUND_WEBHOOK_CLAIM_LEASE_S": str(LEASE_S),
        "LOANFUND_WEBHOOK_POLL_INTERVAL_S": "0.2",
        "LOANFUND_WEBHOOK_RETRY_SCHEDULE_S": "[0.2, 0.2, 0.2]",
    }
    workers = [WorkerProcess(env, tmp_path / f"worker-{i}.log") for i in range(2)]
    try:
        yield Setup(settings, engine, bank_id, workers)
    finally:
        for w in workers:
            w.stop()
        engine.dispose()


def _states(session: Session) -> Counter[DeliveryState]:
    return Counter(session.scalars(select(WebhookDelivery.state)))


def _listening(workers: int) -> Callable[[Session], bool]:
    """Whether `workers` connections to this database are listening for new events (PostgreSQL)."""

    def check(s: Session) -> bool:
        count = s.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND query LIKE 'LISTEN %'"
            )
        ).scalar_one()
        return int(count) >= workers

    return check


def test_a_worker_killed_mid_delivery_loses_nothing(setup: Setup, receiver: Receiver) -> None:
    held = threading.Event()
    receiver.hold = held  # the receiver keeps the first request waiting
    worker = setup.workers[0]
    worker.start()
    setup.emit(1)
    [first] = receiver.wait_for(1, timeout=30)
    worker.kill()  # mid-delivery: the request is out, no answer has come back
    receiver.hold = None
    held.set()
    with Session(setup.engine) as s:
        [row] = s.scalars(select(WebhookDelivery)).all()
        assert (row.state, row.attempts, row.claim_token is not None) == (DeliveryState.pending, 0, True)

    worker.start()  # the delivery comes due again when the dead worker's lease ends
    setup.wait_until(lambda s: _states(s) == Counter({DeliveryState.succeeded: 1}), timeout=LEASE_S + 30)
    second = receiver.received[-1]
    assert len(receiver.received) == 2
    assert second.webhook_id == first.webhook_id
    assert second.body == first.body
    assert second.verified_by == receiver.secrets
    assert second.json["type"] == "claim.paid"
    with Session(setup.engine) as s:
        [attempt] = s.scalars(select(WebhookAttempt)).all()
        assert attempt.status_code == 200


def test_two_workers_on_postgresql_deliver_each_event_once(
    setup: Setup, receiver: Receiver, backend: str
) -> None:
    if backend == "sqlite":
        pytest.skip("several workers share the work on PostgreSQL (SKIP LOCKED); SQLite runs one worker")
    receiver.delay_s = 0.02  # each answer takes a moment, so that both workers have messages out
    events = 120
    for w in setup.workers:
        w.start()
    # both workers up (each holds a connection listening for new events) before the first event, so that
    # a worker slow to start on a busy machine does not find the work done already
    setup.wait_until(_listening(len(setup.workers)), timeout=60)
    for _ in range(4):
        setup.emit(events // 4)
    setup.wait_until(lambda s: _states(s) == Counter({DeliveryState.succeeded: events}), timeout=60)
    received = receiver.wait_for(events)
    ids = Counter(m.webhook_id for m in received)
    assert len(ids) == events
    assert set(ids.values()) == {1}  # each event exactly once
    assert all(m.verified_by == receiver.secrets for m in received)
    assert sorted(m.json["data"]["n"] for m in received) == sorted(list(range(events // 4)) * 4)
    with Session(setup.engine) as s:
        assert s.scalar(select(func.count()).select_from(WebhookAttempt)) == events
    for w in setup.workers:
        w.stop()
    shares = [w.attempts_logged() for w in setup.workers]
    assert sum(shares) == events
    assert min(shares) > 0, shares  # both took part
