"""The fund's stress test at scale: 100,000 covered loans × 10,000 scenarios, on one core.

    python -m bench.stress                   # the bar's size, in either profile
    BENCH_SCALE=0.1 python -m bench.stress   # a tenth of the loans, to try it out

A fresh PostgreSQL database holds a 20,000-loan history from `bench.generate` — loans from 2019 on, in
every state, with the fund's contributions, compensation and recoveries in the ledger, so that the
probabilities of default and the loss given default are calibrated from real-looking counts — and then
loans lent in the last eleven months, made by the same generator (events replayed through
`loans.state.apply`), until 100,000 loans are covered. The fund receives one more contribution so
that covered outstanding stays at 8× its balance.

Then a child process, pinned to one CPU with the OpenMP / OpenBLAS / MKL thread counts set to 1, runs
the stress test's service function (`risk.stress.run`: what `POST /api/v1/fund/stress-tests` calls —
the book read, the calibration, the simulation, the figures, the stored run) three times with 10,000
scenarios and reports the median time and its peak resident memory (VmHWM). Bar: 10 s.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import create_engine, func, select

from bench import common
from bench.generate import LoanMaker, Registry, Rules, copy_loans, generate
from loanfund.core.clock import business_today
from loanfund.core.config import Settings
from loanfund.core.session import transaction

COVERED_LOANS = common.scaled(100_000, 100_000)
HISTORY_LOANS = common.scaled(20_000, 20_000)
SCENARIOS = 10_000
ROUNDS = 3
BAR_SECONDS = 10.0
LEVERAGE = 8
ONE_CORE = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class RecentLoanMaker(LoanMaker):
    """The generator's loans, lent within the last eleven months: most are still covered today."""

    def start_date(self) -> date:
        return self.today - timedelta(days=self.rng.randint(5, 330))


def _covered(url: str) -> tuple[int, int]:
    from loanfund.loans.models import Loan
    from loanfund.portfolio.service import COVERED

    engine = create_engine(url)
    with engine.connect() as c:
        row = c.execute(
            select(func.count(), func.coalesce(func.sum(Loan.outstanding_fen), 0)).where(
                Loan.state.in_(COVERED)
            )
        ).one()
    engine.dispose()
    return int(row[0]), int(row[1])


def build(url: str) -> dict[str, Any]:
    """The history, then recent loans until COVERED_LOANS are covered; the fund topped up."""
    from loanfund.audit.service import Actor
    from loanfund.fund import contributions
    from loanfund.fund import service as fund_service
    from loanfund.fund.models import ContributionSource

    started = time.perf_counter()
    portfolio = generate(url, HISTORY_LOANS, log=lambda text: common.line("", text.strip()))
    settings = Settings(database_url=url, env="dev")
    engine = create_engine(url)
    with transaction(engine) as session:
        rules = Rules.load(session, settings)
        banks = [(b.id, b.code, b.fund_share, w) for b, w in _banks(session)]
    enterprises = _enterprises(url)
    maker = RecentLoanMaker(
        random.Random(2026), Registry(banks, enterprises), rules, business_today(settings), datetime.now(UTC)
    )
    with psycopg.connect(common.libpq_url(url)) as conn:
        while (covered := _covered(url)[0]) < COVERED_LOANS:
            next_loan = int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM loans").fetchone()[0])
            next_event = int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM loan_events").fetchone()[0])
            wanted = max(1, int((COVERED_LOANS - covered) / 0.8))
            copy_loans(conn, maker, wanted, next_loan, next_event)
            conn.commit()
        conn.execute("SELECT setval('loans_id_seq', (SELECT max(id) FROM loans))")
        conn.execute("SELECT setval('loan_events_id_seq', (SELECT max(id) FROM loan_events))")
    covered, covered_fen = _covered(url)
    with transaction(engine) as session:
        balance = fund_service.fund_position(session).balance_fen
        top_up = max(0, covered_fen // LEVERAGE - balance) // 100 * 100
        if top_up:
            contributions.record_contribution(
                session,
                Actor(kind="system", id=None, name="bench-stress"),
                source=ContributionSource.district,
                amount_fen=top_up,
                value_date=business_today(settings) - timedelta(days=400),
                budget_doc_no="BENCH-STRESS-TOP-UP",
            )
    engine.dispose()
    with psycopg.connect(common.libpq_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return {
        "history_loans": portfolio.loans,
        "loans": _count(url),
        "covered_loans": covered,
        "covered_yuan": covered_fen / 100,
        "build_seconds": time.perf_counter() - started,
    }


def _banks(session: Any) -> list[tuple[Any, int]]:
    from bench.generate import BANKS
    from loanfund.banks.models import Bank

    weights = {code: weight for code, _, _, weight in BANKS}
    return [(b, weights[b.code]) for b in session.scalars(select(Bank).order_by(Bank.id))]


def _enterprises(url: str) -> list[tuple[int, str]]:
    with psycopg.connect(common.libpq_url(url)) as conn:
        return [
            (int(r[0]), str(r[1])) for r in conn.execute("SELECT id, industry FROM enterprises ORDER BY id")
        ]


def _count(url: str) -> int:
    with psycopg.connect(common.libpq_url(url)) as conn:
        return int(conn.execute("SELECT count(*) FROM loans").fetchone()[0])


# --- the measured run, in a child process on one core ---------------------------------------------------


def child(url: str) -> None:
    """Run the stress test ROUNDS times; print the timings and memory as JSON on the last line."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from loanfund.audit.service import Actor
    from loanfund.risk import stress
    from loanfund.risk.schemas import StressTestCreate

    settings = Settings(database_url=url, env="dev", log_level="WARNING")
    engine = create_engine(url)
    actor = Actor(kind="system", id=None, name="bench-stress")
    today = business_today(settings)
    at_start = common.memory_kib(os.getpid())["VmRSS"]
    seconds, cpu, outputs = [], [], {}
    for seed in range(1, ROUNDS + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        with transaction(engine) as session:
            run = stress.run(
                session, settings, actor, StressTestCreate(scenarios=SCENARIOS, seed=seed), today=today
            )
            outputs = {
                k: run.outputs[k] for k in ("covered_loans", "expected_loss", "var_99", "p_exhaustion")
            }
        seconds.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    memory = common.memory_kib(os.getpid())
    engine.dispose()
    figures = {"seconds": seconds, "cpu_seconds": cpu, "rss_start_kib": at_start, "peak_kib": memory["VmHWM"]}
    print(json.dumps({**figures, **outputs, "load": os.getloadavg()[0]}))


def measure(url: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.stress", "--child", url],
        env=common.server_env(url, **ONE_CORE),
        cwd=common.ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    common.header(f"stress test: {COVERED_LOANS:,} covered loans × {SCENARIOS:,} scenarios, one core")
    with common.fresh_database("stress") as url:
        common.line("building the book", "…")
        book = build(url)
        common.line(
            "book",
            f"{book['loans']:,} loans, {book['covered_loans']:,} covered ({book['covered_yuan']:,.0f} yuan); "
            f"built in {book['build_seconds']:.0f} s",
        )
        result = measure(url)
    median = statistics.median(result["seconds"])
    cpu = statistics.median(result["cpu_seconds"])
    ratio, cpu_ratio = median / BAR_SECONDS, cpu / BAR_SECONDS
    peak_mib, start_mib = result["peak_kib"] / 1024, result["rss_start_kib"] / 1024
    common.line(
        "stress test, median of 3",
        f"{median:.2f} s (runs {', '.join(f'{s:.2f}' for s in result['seconds'])}; "
        f"{result['covered_loans']:,} loans, {SCENARIOS:,} scenarios)",
    )
    common.line(
        "t / bar",
        f"{ratio:.2f}  (bar ≤ 1.00, i.e. {BAR_SECONDS:.0f} s on one core)  {common.verdict(ratio <= 1)}",
    )
    # on a machine shared with other work the process waits for its core: its CPU time is what it used
    common.line(
        "CPU time of the process / bar",
        f"{cpu_ratio:.2f}  ({cpu:.2f} s; the database's own work is not in it; load average "
        f"{result['load']:.1f} on {os.cpu_count()} CPUs)",
    )
    common.line("peak RSS of the process", f"{peak_mib:.0f} MiB (after imports {start_mib:.0f} MiB)")
    common.line(
        "figures",
        f"EL {result['expected_loss']}, VaR 99 {result['var_99']}, p(exhaustion) {result['p_exhaustion']}",
    )
    common.save(
        "stress",
        {
            **book,
            "scenarios": SCENARIOS,
            "seconds": result["seconds"],
            "median_seconds": median,
            "ratio_to_bar": ratio,
            "cpu_seconds": result["cpu_seconds"],
            "median_cpu_seconds": cpu,
            "load_average": result["load"],
            "bar_seconds": BAR_SECONDS,
            "peak_rss_mib": peak_mib,
            "rss_after_imports_mib": start_mib,
        },
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
