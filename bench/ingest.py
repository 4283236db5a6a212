"""Bulk ingest: loan contracts and events through the real HTTP API versus plain psycopg `executemany`.

    python -m bench.ingest                     # quick: 10,000 contracts + 20,000 events
    BENCH_PROFILE=full python -m bench.ingest  # 100,000 contracts + 200,000 events

API: `loanfund serve --workers 1` (uvicorn) on a fresh migrated PostgreSQL database; one client posts
`POST /api/v1/loans/batch` in batches of 1,000 items, each with its own `Idempotency-Key`: first the
contracts, then a disbursement for every loan, then a repayment or delinquency report for every loan.
Each batch is validated item by item, applied all-or-nothing, audited per item, kept in the portfolio
aggregates and stored for idempotent replay, in one transaction.

Raw: the same loan and event rows inserted into another fresh database with the same tables and
indexes by psycopg `executemany`, 1,000 rows per transaction (loans with `RETURNING id`, which the events
need) — no validation, no audit, no aggregates, no idempotency, no HTTP.

Bar: API rows/s ≥ 0.4 × raw rows/s. Also: the server's peak RSS during the API run ≤ 250 MB.

Rounds (BENCH_INGEST_ROUNDS; 5 in the quick profile, 1 in the full one): raw, then API and raw again, so
that each API run is compared with the raw runs just before and after it; the ratio printed against
the bar is the median round's, and every round is printed.
"""

from __future__ import annotations

import json
import os
import queue
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import psycopg
from sqlalchemy import create_engine

from bench import common
from bench.generate import credit_code, make_registry
from loanfund.core.config import Settings

BATCH = 1_000
BAR_RATIO = 0.4
BAR_RSS_MIB = 250
FUND_YUAN = 50_000_000_000  # so that the 10× leverage cap admits every contract (≤ 2,000,000 each)
CLIENTS = int(os.environ.get("BENCH_INGEST_CLIENTS", "1"))  # concurrent posting streams, both sides


@dataclass(frozen=True)
class Contract:
    ref: str
    credit_code: str
    amount_yuan: int
    rate: str
    start: date
    maturity: date


def plan(
    n: int, codes: list[str], seed: int = 6, prefix: str = "ING"
) -> tuple[list[Contract], list[list[dict[str, Any]]]]:
    """`n` contracts and 2n events: a disbursement for each, then a repayment (most), a delinquency
    report (some) or a full repayment (a few)."""
    rng = random.Random(seed)
    contracts = []
    for i in range(n):
        start = date(2025, 1, 2) + timedelta(days=rng.randint(0, 150))
        contracts.append(
            Contract(
                ref=f"{prefix}-{i:07d}",
                credit_code=codes[rng.randrange(len(codes))],
                amount_yuan=rng.choice((200_000, 500_000, 800_000, 1_000_000, 2_000_000)),
                rate=rng.choice(("3.10", "3.60", "4.10", "4.45")),
                start=start,
                maturity=start + timedelta(days=360),
            )
        )
    disbursements = [
        {
            "type": "disbursement",
            "bank_loan_ref": c.ref,
            "bank_event_ref": f"{c.ref}-d",
            "date": (c.start + timedelta(days=2)).isoformat(),
            "amount": f"{c.amount_yuan}.00",
        }
        for c in contracts
    ]
    later: list[dict[str, Any]] = []
    for c in contracts:
        day = (c.start + timedelta(days=rng.randint(60, 180))).isoformat()
        u = rng.random()
        if u < 0.10:
            later.append(
                {
                    "type": "delinquency",
                    "bank_loan_ref": c.ref,
                    "bank_event_ref": f"{c.ref}-q",
                    "date": day,
                    "days_past_due": rng.randint(5, 40),
                }
            )
        else:
            principal = c.amount_yuan if u > 0.95 else c.amount_yuan // 10 * rng.randint(0, 3)
            later.append(
                {
                    "type": "repayment",
                    "bank_loan_ref": c.ref,
                    "bank_event_ref": f"{c.ref}-r",
                    "date": day,
                    "principal": f"{principal}.00",
                    "interest": f"{c.amount_yuan * 3 // 100 // 4}.00",
                }
            )
    return contracts, [disbursements, later]


def contract_item(c: Contract) -> dict[str, Any]:
    return {
        "type": "contract",
        "bank_loan_ref": c.ref,
        "credit_code": c.credit_code,
        "amount": f"{c.amount_yuan}.00",
        "annual_rate_pct": c.rate,
        "start_date": c.start.isoformat(),
        "maturity_date": c.maturity.isoformat(),
    }


def phases_of(contracts: list[Contract], events: list[list[dict[str, Any]]]) -> list[tuple[str, list[Any]]]:
    return [
        ("contracts", [contract_item(c) for c in contracts]),
        *zip(("disbursements", "later"), events, strict=True),
    ]


def chunks(items: list[Any], size: int = BATCH) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# --- through the API ------------------------------------------------------------------------------------


def run_api(n: int, clients: int) -> dict[str, Any]:
    with common.fresh_database("ingest_api") as url:
        settings = Settings(database_url=url)
        engine = create_engine(url)
        registry = make_registry(engine, settings, 2_000, random.Random(1), fund_yuan=FUND_YUAN)
        engine.dispose()
        codes = [credit_code(i) for i in range(1, 2_001)]
        contracts, event_phases = plan(n, codes)
        key = registry.keys[next(k for k in registry.keys if k.startswith("bank "))]
        bodies = {
            name: [json.dumps({"items": b}).encode() for b in chunks(items)]
            for name, items in phases_of(contracts, event_phases)
        }
        warm_up = [
            (f"warm-{name}", json.dumps({"items": items}).encode())
            for name, items in phases_of(*plan(BATCH, codes, seed=7, prefix="WARM"))
        ]
        per_phase: dict[str, float] = {}
        local = threading.local()
        with common.Server(url) as server:

            def post(job: tuple[str, int, bytes]) -> None:
                name, i, body = job
                if not hasattr(local, "client"):
                    local.client = httpx.Client(base_url=server.base_url, timeout=600)
                r = local.client.post(
                    "/api/v1/loans/batch",
                    content=body,
                    headers={
                        "Authorization": f"Bearer {key}",
                        "Content-Type": "application/json",
                        "Idempotency-Key": f"ingest-{name}-{i}",
                    },
                )
                if r.status_code != 200:
                    raise SystemExit(f"batch {i} ({name}) answered {r.status_code}: {r.text[:2000]}")

            # not part of the rate: a batch of each kind first, on other loans, so that the rate is the
            # server's steady state (its caches filled, its statements prepared)
            for name, body in warm_up:
                post((name, 0, body))
            rss_start = server.memory_mib()["VmRSS"]
            with ThreadPoolExecutor(clients) as pool:
                t_all = time.perf_counter()
                for name, batches in bodies.items():  # a phase ends before the next begins
                    t0 = time.perf_counter()
                    list(pool.map(post, [(name, i, b) for i, b in enumerate(batches)]))
                    per_phase[name] = time.perf_counter() - t0
                elapsed = time.perf_counter() - t_all
            mem = server.memory_mib()
    rows = n * 3
    return {
        "rows": rows,
        "seconds": elapsed,
        "rows_per_s": rows / elapsed,
        "phase_rows_per_s": {k: n / v for k, v in per_phase.items()},
        "rss_start_mib": rss_start,
        "peak_rss_mib": mem["VmHWM"],
    }


# --- raw psycopg ----------------------------------------------------------------------------------------

LOAN_SQL = (
    "INSERT INTO loans (bank_id, enterprise_id, industry, bank_loan_ref, grade, contract_amount_fen,"
    " annual_rate_pct, start_date, maturity_date, state, disbursed_fen, principal_repaid_fen,"
    " interest_repaid_fen, outstanding_fen, days_past_due, created_at, updated_at)"
    " VALUES (%s, %s, %s, %s, 'U', %s, %s, %s, %s, 'approved', 0, 0, 0, 0, 0, now(), now()) RETURNING id"
)
EVENT_SQL = (
    "INSERT INTO loan_events (loan_id, bank_id, bank_event_ref, kind, event_date, principal_fen,"
    " interest_fen, days_past_due, source, created_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'batch', now())"
)


def _fen(yuan: str) -> int:
    whole, _, cents = yuan.partition(".")
    return int(whole) * 100 + int((cents + "00")[:2])


def run_raw(n: int, clients: int) -> dict[str, Any]:
    with common.fresh_database("ingest_raw") as url:
        settings = Settings(database_url=url)
        engine = create_engine(url)
        registry = make_registry(engine, settings, 2_000, random.Random(1), fund_yuan=FUND_YUAN)
        engine.dispose()
        bank_id = registry.banks[0][0]
        codes = [credit_code(i) for i in range(1, 2_001)]
        contracts, event_phases = plan(n, codes)
        conns = [psycopg.connect(common.libpq_url(url)) for _ in range(clients)]
        enterprise = {
            code: (eid, ind)
            for code, eid, ind in conns[0].execute("SELECT credit_code, id, industry FROM enterprises")
        }
        conns[0].commit()
        ids: dict[str, int] = {}
        free: queue.Queue[psycopg.Connection[Any]] = queue.Queue()
        for c in conns:
            free.put(c)

        def insert_loans(batch: list[Contract]) -> None:
            conn = free.get()
            try:
                params = [
                    (
                        bank_id,
                        *enterprise[c.credit_code],
                        c.ref,
                        c.amount_yuan * 100,
                        c.rate,
                        c.start,
                        c.maturity,
                    )
                    for c in batch
                ]
                with conn.cursor() as cur:
                    cur.executemany(LOAN_SQL, params, returning=True)
                    for c in batch:
                        row = cur.fetchone()
                        assert row is not None
                        ids[c.ref] = row[0]
                        cur.nextset()
                conn.commit()
            finally:
                free.put(conn)

        def insert_events(batch: list[dict[str, Any]]) -> None:
            conn = free.get()
            try:
                with conn.cursor() as cur:
                    cur.executemany(EVENT_SQL, [_event_params(ids, bank_id, e) for e in batch])
                conn.commit()
            finally:
                free.put(conn)

        # not part of the rate, as for the API: a batch of each kind first, on other loans
        warm_contracts, warm_events = plan(BATCH, codes, seed=7, prefix="WARM")
        insert_loans(warm_contracts)
        for items in warm_events:
            insert_events(items)
        with ThreadPoolExecutor(clients) as pool:
            t_all = time.perf_counter()
            list(pool.map(insert_loans, chunks(contracts)))
            for items in event_phases:
                list(pool.map(insert_events, chunks(items)))
            elapsed = time.perf_counter() - t_all
        for c in conns:
            c.close()
    rows = n * 3
    return {"rows": rows, "seconds": elapsed, "rows_per_s": rows / elapsed}


def _event_params(ids: dict[str, int], bank_id: int, e: dict[str, Any]) -> tuple[Any, ...]:
    kind = e["type"]
    principal = _fen(e.get("amount") or e.get("principal") or "0")
    interest = _fen(e.get("interest", "0"))
    dpd = e.get("days_past_due") if kind == "delinquency" else None
    day = date.fromisoformat(e["date"])
    return (ids[e["bank_loan_ref"]], bank_id, e["bank_event_ref"], kind, day, principal, interest, dpd)


def main() -> None:
    n = common.scaled(10_000, 100_000)
    rounds = int(os.environ.get("BENCH_INGEST_ROUNDS", "1" if common.FULL else "5"))
    common.header(f"ingest: {n:,} contracts + {2 * n:,} events, batches of {BATCH:,}, {rounds} round(s)")
    # raw, then API and raw again, `rounds` times: each API run against the mean of the raw runs just
    # before and after it (the machine's load drifts over a run), and the median of those ratios
    raw_runs = [run_raw(n, CLIENTS)]
    api_runs = []
    ratios = []
    for _ in range(rounds):
        api_runs.append(run_api(n, CLIENTS))
        raw_runs.append(run_raw(n, CLIENTS))
        around = (raw_runs[-2]["rows_per_s"] + raw_runs[-1]["rows_per_s"]) / 2
        ratios.append(api_runs[-1]["rows_per_s"] / around)
    for i, (api, ratio) in enumerate(zip(api_runs, ratios, strict=True), start=1):
        phases = ", ".join(f"{k} {v:,.0f}" for k, v in api["phase_rows_per_s"].items())
        common.line(
            f"round {i}",
            f"API {api['rows_per_s']:,.0f} rows/s ({phases}); raw {raw_runs[i - 1]['rows_per_s']:,.0f} "
            f"before, {raw_runs[i]['rows_per_s']:,.0f} after; ratio {ratio:.2f}",
        )
    order = sorted(range(rounds), key=lambda i: ratios[i])
    mid = order[rounds // 2]  # the median round (the upper one of an even number)
    api, ratio = api_runs[mid], ratios[mid]
    raw_rate = api["rows_per_s"] / ratio
    common.line("raw psycopg executemany", f"{raw_rate:,.0f} rows/s (round {mid + 1}, mean before and after)")
    common.line(
        "API (1 worker, idempotency keys)",
        f"{api['rows_per_s']:,.0f} rows/s ({api['seconds']:.1f} s, round {mid + 1})",
    )
    label = "ratio API / raw" + (f" (median of {rounds})" if rounds > 1 else "")
    common.line(label, f"{ratio:.2f}  (bar ≥ {BAR_RATIO})  {common.verdict(ratio >= BAR_RATIO)}")
    peak = max(a["peak_rss_mib"] for a in api_runs)
    common.line(
        "server peak RSS during ingest",
        f"{peak:.0f} MiB (at start {api['rss_start_mib']:.0f})  (bar ≤ {BAR_RSS_MIB})  "
        f"{common.verdict(peak <= BAR_RSS_MIB)}",
    )
    common.save(
        "ingest",
        {
            "contracts": n,
            "events": 2 * n,
            "raw": raw_runs,
            "api": api_runs,
            "ratios": ratios,
            "raw_rows_per_s": raw_rate,
            "ratio": ratio,
        },
    )


if __name__ == "__main__":
    main()
