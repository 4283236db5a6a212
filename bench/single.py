"""Single requests: 32 concurrent clients posting single repayments, versus a bare endpoint.

    python -m bench.single                     # quick: 8 s per measurement
    BENCH_PROFILE=full python -m bench.single  # 30 s per measurement

One server process (uvicorn, one worker, the app's default pool and thread pool) serves the real app
plus `POST /bench/bare` (`bench/serve.py`: one INSERT, no authentication, validation, idempotency or
audit). Six partner banks with 300 disbursed loans each; 32 clients, spread over the banks, each on its
own keep-alive connection, post `POST /api/v1/loans/{id}/repayments` (interest, dated today, each with
its own `Idempotency-Key`) to their bank's loans as fast as answers come back. Every repayment is checked,
locked, applied, audited, added to the portfolio aggregates and stored for replay, in one transaction —
shared with the other repayments in flight (group commit, docs/adr/0010-group-commit.md).

The bare endpoint is measured before and after the repayments and averaged (the machine's load drifts).
The clients are a few lines of asyncio on raw HTTP/1.1, so that the client's own cost stays small next to
the server's on a shared machine.

Bar: repayments/s ≥ 0.5 × bare requests/s; p50 and p99 latencies printed for both.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import create_engine

from bench import common
from bench.generate import credit_code, make_registry
from bench.serve import ensure_bare_table
from loanfund.core.clock import business_today
from loanfund.core.config import Settings

CLIENTS = 32
LOANS_PER_BANK = 300
BAR_RATIO = 0.5


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    errors: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def summary(self) -> str:
        p50 = common.percentile(self.latencies, 50) * 1000
        p99 = common.percentile(self.latencies, 99) * 1000
        errors = f", errors {self.errors}" if self.errors else ""
        return f"{self.rps:,.0f} req/s  p50 {p50:.1f} ms  p99 {p99:.1f} ms{errors}"


class RequestMaker:
    def next(self) -> bytes:
        raise NotImplementedError


def http_post(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{head}\r\n"
    ).encode() + body


class Bare(RequestMaker):
    def next(self) -> bytes:
        return http_post("/bench/bare", b'{"principal":"0","interest":"1.00"}', {})


class Repayments(RequestMaker):
    """A client's repayments: round-robin over its own loans (clients share no loan), dated today."""

    def __init__(self, client: int, key: str, loan_ids: list[int], today: date) -> None:
        self.client = client
        self.key = key
        self.loans = loan_ids
        self.today = today.isoformat()
        self.n = 0
        self.rng = random.Random(client)

    def next(self) -> bytes:
        self.n += 1
        loan = self.loans[self.n % len(self.loans)]
        ref = f"S{self.client:02d}-{self.n:07d}"
        body = json.dumps(
            {"bank_event_ref": ref, "date": self.today, "interest": f"{self.rng.randint(100, 99_999)}.00"}
        ).encode()
        headers = {"Authorization": f"Bearer {self.key}", "Idempotency-Key": ref}
        return http_post(f"/api/v1/loans/{loan}/repayments", body, headers)


async def _client(port: int, maker: RequestMaker, stop_at: float, run: Run, expect: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at:
            request = maker.next()
            t0 = time.perf_counter()
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            if status == expect:
                run.latencies.append(time.perf_counter() - t0)
            else:
                run.errors[status] = run.errors.get(status, 0) + 1
    finally:
        writer.close()


def measure(port: int, makers: Sequence[RequestMaker], seconds: float, expect: int = 201) -> Run:
    run = Run()

    async def main() -> None:
        t0 = time.perf_counter()
        stop_at = t0 + seconds
        await asyncio.gather(*(_client(port, m, stop_at, run, expect) for m in makers))
        run.seconds = time.perf_counter() - t0

    asyncio.run(main())
    return run


def setup(server: common.Server, keys: dict[str, str], today: date) -> dict[str, list[int]]:
    """Each bank's disbursed loans, posted through the batch API."""
    loans: dict[str, list[int]] = {}
    start = today - timedelta(days=120)
    with httpx.Client(base_url=server.base_url, timeout=300) as c:
        for who, key in keys.items():
            if not who.startswith("bank "):
                continue
            code = who.removeprefix("bank ")
            items: list[dict[str, Any]] = []
            for i in range(LOANS_PER_BANK):
                ref = f"{code}-S{i:05d}"
                items.append(
                    {
                        "type": "contract",
                        "bank_loan_ref": ref,
                        "credit_code": credit_code(1 + i % 500),
                        "amount": "500000.00",
                        "annual_rate_pct": "3.50",
                        "start_date": start.isoformat(),
                        "maturity_date": (start + timedelta(days=360)).isoformat(),
                    }
                )
                items.append(
                    {
                        "type": "disbursement",
                        "bank_loan_ref": ref,
                        "bank_event_ref": f"{ref}-d",
                        "date": (start + timedelta(days=1)).isoformat(),
                        "amount": "500000.00",
                    }
                )
            r = c.post(
                "/api/v1/loans/batch", json={"items": items}, headers={"Authorization": f"Bearer {key}"}
            )
            r.raise_for_status()
            loans[key] = sorted(set(r.json()["loan_ids"]))
    return loans


def main() -> None:
    seconds = float(common.scaled(8, 30))
    common.header(f"single requests: {CLIENTS} clients, {seconds:.0f} s per measurement")
    with common.fresh_database("single") as url:
        settings = Settings(database_url=url)
        engine = create_engine(url)
        registry = make_registry(engine, settings, 500, random.Random(3), fund_yuan=1_000_000_000)
        ensure_bare_table(engine)
        engine.dispose()
        today = business_today(settings)
        with common.Server(url, command=["-m", "bench.serve"]) as server:
            loans = setup(server, registry.keys, today)
            keys = list(loans)
            makers: list[RequestMaker] = []
            for c in range(CLIENTS):
                key = keys[c % len(keys)]
                mine = loans[key][c // len(keys) :: (CLIENTS + len(keys) - 1) // len(keys)]
                makers.append(Repayments(c, key, mine, today))
            bare = [Bare() for _ in range(CLIENTS)]
            measure(server.port, bare, 1.5)  # warm-up: connections, the pool, first-request costs
            measure(server.port, makers, 1.5)
            bare_before = measure(server.port, bare, seconds)
            repay = measure(server.port, makers, seconds)
            bare_after = measure(server.port, bare, seconds)
    bare_rps = (bare_before.rps + bare_after.rps) / 2
    common.line("bare endpoint (before)", bare_before.summary())
    common.line("bare endpoint (after)", bare_after.summary())
    common.line("single repayments", repay.summary())
    ratio = repay.rps / bare_rps
    common.line(
        "ratio repayments / bare", f"{ratio:.2f}  (bar ≥ {BAR_RATIO})  {common.verdict(ratio >= BAR_RATIO)}"
    )
    common.save(
        "single",
        {
            "clients": CLIENTS,
            "seconds": seconds,
            "bare_rps": bare_rps,
            "bare_p50_ms": common.percentile(bare_before.latencies + bare_after.latencies, 50) * 1000,
            "bare_p99_ms": common.percentile(bare_before.latencies + bare_after.latencies, 99) * 1000,
            "repay_rps": repay.rps,
            "repay_p50_ms": common.percentile(repay.latencies, 50) * 1000,
            "repay_p99_ms": common.percentile(repay.latencies, 99) * 1000,
            "errors": repay.errors,
            "ratio": ratio,
        },
    )


if __name__ == "__main__":
    main()
