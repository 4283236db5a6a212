"""Real concurrency: threads on separate connections race for the fund with committed transactions.

It runs against a dedicated database (created, migrated and dropped here), never the suite's rolled-back
test transaction. On PostgreSQL this exercises the row locks; on SQLite, `BEGIN IMMEDIATE`.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session

from loanfund.banks import service as bank_service
from loanfund.core.config import Settings
from loanfund.core.db import make_engine
from loanfund.core.errors import LoanfundError
from loanfund.core.migrations import upgrade
from loanfund.core.session import transaction
from loanfund.fund import contributions, ledger, service
from loanfund.fund.models import ContributionSource
from tests.factories import TEST_ACTOR as ACTOR

THREADS = 20
UNIT = 100_000_00  # 100,000.00 yuan in fen
DAY = date(2021, 9, 1)


@pytest.fixture
def fresh_engine(backend: str, database_url: str, tmp_path: Path) -> Iterator[Engine]:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'race.db'}"
        admin = None
        name = ""
    else:
        name = f"loanfund_race_{uuid.uuid4().hex[:8]}"
        admin = create_engine(make_url(database_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        settings = Settings(env="test", database_url=url, secret_key=SecretStr("x" * 40))
        engine = make_engine(settings, pool_size=THREADS + 2, max_overflow=0)
        try:
            yield engine
        finally:
            engine.dispose()
    finally:
        if admin is not None:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def race(engine: Engine, work: Callable[[Session, int], object]) -> Counter[str]:
    """Run `work(session, i)` for i in 0..THREADS-1 at once, each in its own committed transaction;
    count outcomes by error code ("ok" for success). Meanwhile, watch that the fund never goes negative."""
    barrier = threading.Barrier(THREADS)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    crashes: list[BaseException] = []
    done = threading.Event()
    seen_negative: list[object] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            with transaction(engine) as session:
                work(session, i)
            outcome = "ok"
        except LoanfundError as exc:
            outcome = exc.code
        except BaseException as exc:
            with lock:
                crashes.append(exc)
            return
        with lock:
            outcomes[outcome] += 1

    def watch() -> None:
        while not done.is_set():
            with transaction(engine) as session:
                p = service.fund_position(session)
            if min(p.available_fen, p.reserved_fen, p.balance_fen) < 0:
                seen_negative.append(p)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    watcher = threading.Thread(target=watch)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    done.set()
    watcher.join(timeout=30)
    assert not crashes, crashes
    assert not seen_negative, seen_negative
    return outcomes


def test_parallel_payouts_reservations_and_double_payments(fresh_engine: Engine) -> None:
    engine = fresh_engine
    with transaction(engine) as session:
        bank_id = bank_service.create_bank(
            session,
            ACTOR,
            code="RACE",
            name="Race bank",
            fund_share=Decimal("0.80"),
            allow_contracts_without_application=True,
        ).id
        contributions.record_contribution(
            session,
            ACTOR,
            source=ContributionSource.district,
            amount_fen=10 * UNIT,
            value_date=DAY,
            budget_doc_no="RACE-1",
        )

    # 1. 20 payouts of 2 units (reserve and pay in one transaction) when the fund holds 10: 5 are paid.
    #    The bank's compensation account does not exist yet: the threads also race to create it.
    def payout(session: Session, i: int) -> None:
        service.reserve(session, ACTOR, 2 * UNIT, DAY, "claim", f"a{i}")
        service.pay_reserved(session, ACTOR, 2 * UNIT, bank_id, DAY, "claim", f"a{i}")

    assert race(engine, payout) == {"ok": 5, "fund_insufficient": 15}
    with transaction(engine) as session:
        p = service.fund_position(session)
        assert (p.balance_fen, p.reserved_fen, p.compensation_paid_fen) == (0, 0, 10 * UNIT)

    # 2. 20 reservations of 2 units when 10 are available: 5 succeed.
    with transaction(engine) as session:
        contributions.record_contribution(
            session,
            ACTOR,
            source=ContributionSource.city,
            amount_fen=10 * UNIT,
            value_date=DAY,
            budget_doc_no="RACE-2",
        )
    assert race(engine, lambda s, i: service.reserve(s, ACTOR, 2 * UNIT, DAY, "claim", f"b{i}")) == {
        "ok": 5,
        "fund_insufficient": 15,
    }
    with transaction(engine) as session:
        reserved = [f"b{i}" for i in range(THREADS) if service.reserved_for(session, "claim", f"b{i}")]
        p = service.fund_position(session)
        assert (p.balance_fen, p.reserved_fen, p.available_fen) == (10 * UNIT, 10 * UNIT, 0)
    assert len(reserved) == 5

    # 3. Each reserved claim is confirmed four times at once: each is paid exactly once.
    def confirm(session: Session, i: int) -> None:
        service.pay_reserved(session, ACTOR, 2 * UNIT, bank_id, DAY, "claim", reserved[i % 5])

    assert race(engine, confirm) == {"ok": 5, "reservation_exceeded": 15}
    with transaction(engine) as session:
        p = service.fund_position(session)
        assert (p.balance_fen, p.reserved_fen, p.compensation_paid_fen) == (0, 0, 20 * UNIT)
        r = ledger.reconcile(session)
        assert r.ok, r
        assert r.total_debits_fen == r.total_credits_fen
