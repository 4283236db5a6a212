"""SIGKILL the server in the middle of a stream of batch submissions, restart it, and check that every
answered batch is there in full and every other batch is there in full or not at all."""

from __future__ import annotations

import threading
import time
from datetime import date
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from loanfund.audit.service import SYSTEM
from loanfund.enterprises import service as enterprise_service
from loanfund.enterprises.schemas import EnterpriseCreate
from loanfund.fund.contributions import record_contribution
from loanfund.fund.models import ContributionSource
from loanfund.loans.models import Loan, LoanEvent
from tests.factories import credit_code
from tests.reliability.conftest import Server

PER_BATCH = 10


def _batch(b: int, code: str) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for i in range(PER_BATCH):
        ref = f"C{b:04d}-{i:02d}"
        items.append(
            {
                "type": "contract",
                "bank_loan_ref": ref,
                "credit_code": code,
                "amount": "10000",
                "annual_rate_pct": "4.2",
                "start_date": "2021-03-01",
                "maturity_date": "2022-02-28",
            }
        )
        items.append(
            {
                "type": "disbursement",
                "bank_loan_ref": ref,
                "bank_event_ref": f"{ref}-d",
                "date": "2021-03-02",
                "amount": "10000",
            }
        )
    return {"items": items}


def _seed(server: Server) -> tuple[str, str]:
    key = (
        server.cli(
            "bank",
            "create",
            "--name",
            "Crash bank",
            "--code",
            "CRASH",
            "--allow-contracts-without-application",
        )
        .strip()
        .splitlines()[-1]
    )
    engine = create_engine(server.database_url)
    code = credit_code()
    with Session(engine) as s:
        enterprise_service.create_enterprise(
            s,
            SYSTEM,
            EnterpriseCreate(
                credit_code=code, name="重庆崩溃测试有限公司", industry="I", tech_reg_no="T1", grade="A"
            ),
        )
        record_contribution(
            s,
            SYSTEM,
            source=ContributionSource.district,
            amount_fen=100_000_000_00,
            value_date=date(2020, 1, 1),
            budget_doc_no="CRASH-1",
        )
        s.commit()
    engine.dispose()
    return key, code


def test_sigkill_mid_stream_loses_nothing_answered(server: Server) -> None:
    key, code = _seed(server)
    server.start()
    answered: set[int] = set()
    attempted: list[int] = []
    stop = threading.Event()

    def stream() -> None:
        with httpx.Client(base_url=server.url, timeout=10, headers={"Authorization": f"Bearer {key}"}) as c:
            b = 0
            while not stop.is_set() and b < 2000:
                attempted.append(b)
                try:
                    r = c.post(
                        "/api/v1/loans/batch", json=_batch(b, code), headers={"Idempotency-Key": f"batch-{b}"}
                    )
                except httpx.TransportError:
                    return
                assert r.status_code == 200, r.text
                answered.add(b)
                b += 1

    t = threading.Thread(target=stream)
    t.start()
    deadline = time.monotonic() + 20
    while len(answered) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.13)  # land somewhere inside a request
    server.kill()
    stop.set()
    t.join(timeout=20)
    assert len(answered) >= 5

    engine = create_engine(server.database_url)
    with Session(engine) as s:
        counts: dict[str, int] = {}
        for ref in s.scalars(select(Loan.bank_loan_ref)):
            counts[ref[:5]] = counts.get(ref[:5], 0) + 1
        events = s.scalar(select(func.count()).select_from(LoanEvent))
        outstanding = s.scalar(select(func.coalesce(func.sum(Loan.outstanding_fen), 0)))
    engine.dispose()
    for b in answered:
        assert counts.get(f"C{b:04d}") == PER_BATCH, f"answered batch {b} incomplete"
    for b in set(attempted) - answered:
        assert counts.get(f"C{b:04d}", 0) in (0, PER_BATCH), f"batch {b} half-written"
    total = sum(counts.values())
    assert events == total
    assert outstanding == total * 1_000_000

    # restart: retrying the unanswered batch with its key completes it exactly once
    server.start()
    pending = sorted(set(attempted) - answered)
    with httpx.Client(base_url=server.url, timeout=10, headers={"Authorization": f"Bearer {key}"}) as c:
        for b in pending:
            r = c.post("/api/v1/loans/batch", json=_batch(b, code), headers={"Idempotency-Key": f"batch-{b}"})
            assert r.status_code in (200, 422), r.text
            if (
                r.status_code == 422
            ):  # it had committed before the kill; the natural keys refuse a second copy
                assert r.json()["error"]["code"] == "batch_invalid"
        assert c.get("/readyz").status_code == 200
    engine = create_engine(server.database_url)
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Loan)) == PER_BATCH * (max(attempted) + 1)
    engine.dispose()
