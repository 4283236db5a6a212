"""Reports at scale: exposure and the yearly summary stay flat as the book grows; exports stream.

    python -m bench.reports                     # quick: 10,000 and 100,000 loans
    BENCH_PROFILE=full python -m bench.reports  # 10,000 and 1,000,000 loans

For each size: a fresh database filled by `bench.generate`, the app served by `bench.serve` (the real
app, one worker). Then, with a bureau analyst's key:

* the median latency of 50 requests each to `GET /api/v1/fund/exposure` and
  `GET /api/v1/reports/summary?year=<this year>` (they read the portfolio aggregates and the ledger);
* the median time of a naive query answering the same questions from the loans (and their events)
  with `GROUP BY` — run fewer times at the large size, it takes a while — and a check that the numbers
  are identical (per-bank covered, overdue, non-performing and compensated outstanding; loans and
  amount disbursed in the year, cumulative amount, outstanding principal, NPL ratio).

At the largest size, memory: a fresh server streams the whole book as a CSV loan register through the
export kit (`GET /bench/loan-register.csv`, one row per loan) and the aging report with its loan detail
(`GET /api/v1/reports/aging?format=csv&detail=true`); its peak RSS (VmHWM) is read afterwards.

The bureau console's dashboard is measured on the same databases: a staff member signed in with a
password gets `GET /console/?year=<this year>` 30 times (the page with its figures and the series of its
four charts, inlined), median.

Bars: t(large) ÷ t(10k) ≤ 1.5 for both reports and the dashboard; naive ÷ served ≥ 20 at the large size;
identical numbers; peak RSS while streaming the export ≤ 300 MB.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import psycopg

from bench import common
from bench.generate import generate
from loanfund.core.money import yuan_str

REQUESTS = 50
DASHBOARD_REQUESTS = 30
CONSOLE_LOGIN = "bench.console"
CONSOLE_PASSWORD = "bench console passphrase"
BAR_FLAT = 1.5
BAR_NAIVE = 20.0
BAR_EXPORT_MIB = 300
COVERED = ("active", "overdue", "non_performing")

NAIVE_EXPOSURE = """
SELECT bank_id,
       coalesce(sum(outstanding_fen) FILTER (WHERE state IN ('active', 'overdue', 'non_performing')), 0),
       coalesce(sum(outstanding_fen) FILTER (WHERE state = 'overdue'), 0),
       coalesce(sum(outstanding_fen) FILTER (WHERE state = 'non_performing'), 0),
       coalesce(sum(outstanding_fen) FILTER (WHERE state = 'compensated'), 0)
FROM loans GROUP BY bank_id ORDER BY bank_id
"""
NAIVE_SUMMARY_LOANS = """
SELECT count(*) FILTER (WHERE first_disbursed_on BETWEEN %(y0)s AND %(y1)s),
       coalesce(sum(outstanding_fen) FILTER (WHERE state IN ('active', 'overdue', 'non_performing')), 0),
       coalesce(sum(outstanding_fen) FILTER (WHERE state = 'non_performing'), 0),
       coalesce(sum(outstanding_fen) FILTER (WHERE state = 'compensated'), 0)
FROM loans
"""
NAIVE_SUMMARY_EVENTS = """
SELECT coalesce(sum(principal_fen) FILTER (WHERE event_date BETWEEN %(y0)s AND %(y1)s), 0),
       coalesce(sum(principal_fen) FILTER (WHERE event_date <= %(y1)s), 0)
FROM loan_events WHERE kind = 'disbursement'
"""


def _ratio4(numerator: int, denominator: int) -> str | None:
    if denominator <= 0:
        return None
    return str((Decimal(numerator) / Decimal(denominator)).quantize(Decimal("0.0001"), ROUND_HALF_UP))


def timed_get(client: httpx.Client, url: str, n: int) -> tuple[float, Any]:
    times, body = [], None
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(url)
        times.append(time.perf_counter() - t0)
        r.raise_for_status()
        body = r.json()
    return common.median(times), body


def naive(conn: psycopg.Connection[Any], year: int, runs: int) -> tuple[float, float, Any, Any]:
    """Median seconds of the naive exposure and summary queries, and what they answer."""
    y = {"y0": date(year, 1, 1), "y1": date(year, 12, 31)}
    t_exp, t_sum = [], []
    exposure = summary = None
    for _ in range(runs):
        t0 = time.perf_counter()
        exposure = conn.execute(NAIVE_EXPOSURE).fetchall()
        t_exp.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        loans = conn.execute(NAIVE_SUMMARY_LOANS, y).fetchone()
        events = conn.execute(NAIVE_SUMMARY_EVENTS, y).fetchone()
        t_sum.append(time.perf_counter() - t0)
        summary = (loans, events)
    return common.median(t_exp), common.median(t_sum), exposure, summary


def compare(served_exposure: Any, served_summary: Any, naive_exposure: Any, naive_summary: Any) -> list[str]:
    """What differs between the served answers and the naive ones (nothing, we hope)."""
    diffs = []
    by_bank = {row[0]: row[1:] for row in naive_exposure}
    for line in served_exposure["banks"]:
        covered, overdue, npl, compensated = by_bank.get(line["bank_id"], (0, 0, 0, 0))
        expected = {
            "covered_outstanding": yuan_str(int(covered)),
            "overdue_outstanding": yuan_str(int(overdue)),
            "npl_outstanding": yuan_str(int(npl)),
            "compensated_outstanding": yuan_str(int(compensated)),
        }
        for k, v in expected.items():
            if line[k] != v:
                diffs.append(f"exposure bank {line['bank_id']} {k}: served {line[k]}, naive {v}")
    (started, covered, npl, compensated), (disbursed, cumulative) = naive_summary
    expected_summary: dict[str, object] = {
        "loans_disbursed_count": int(started),
        "loans_disbursed_amount": yuan_str(int(disbursed)),
        "cumulative_disbursed_amount": yuan_str(int(cumulative)),
        "outstanding_principal": yuan_str(int(covered)),
        "npl_ratio": _ratio4(int(npl) + int(compensated), int(covered) + int(compensated)),
    }
    for field, value in expected_summary.items():
        if served_summary[field] != value:
            diffs.append(f"summary {field}: served {served_summary[field]}, naive {value}")
    return diffs


def console_staff(url: str) -> None:
    """A staff member who signs in to the console with a password."""
    from loanfund.core.config import Settings
    from loanfund.core.db import make_engine
    from loanfund.core.session import transaction
    from loanfund.demo.seed import DEMO
    from loanfund.staff import service as staff_service
    from loanfund.staff import signin
    from loanfund.staff.models import Role

    engine = make_engine(Settings(database_url=url, env="dev"))
    try:
        with transaction(engine) as session:
            staff = staff_service.create_staff(
                session, DEMO, name="bench console", role=Role.analyst, login=CONSOLE_LOGIN
            )
            signin.set_password(session, Settings(database_url=url, env="dev"), DEMO, staff, CONSOLE_PASSWORD)
    finally:
        engine.dispose()


def timed_dashboard(base_url: str, year: int) -> float:
    """Sign in through the form, then the median time to serve the dashboard (figures and charts)."""
    with httpx.Client(base_url=base_url, timeout=600) as browser:
        form = browser.get("/console/sign-in")
        token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        r = browser.post(
            "/console/sign-in",
            data={"login": CONSOLE_LOGIN, "password": CONSOLE_PASSWORD, "csrf_token": token},
        )
        if r.status_code != 303:
            raise RuntimeError(f"console sign-in refused: {r.status_code}")
        times = []
        for i in range(5 + DASHBOARD_REQUESTS):  # five to warm up
            t0 = time.perf_counter()
            page = browser.get(f"/console/?year={year}")
            if i >= 5:
                times.append(time.perf_counter() - t0)
            page.raise_for_status()
            assert 'data-chart="claims_by_state"' in page.text
        return common.median(times)


@dataclass
class SizeResult:
    loans: int
    exposure_s: float
    summary_s: float
    dashboard_s: float
    naive_exposure_s: float
    naive_summary_s: float
    differences: list[str]
    generate_s: float


def measure_size(n: int, *, last: bool) -> tuple[SizeResult, dict[str, float] | None]:
    with common.fresh_database(f"reports_{n}") as url:
        t0 = time.perf_counter()
        portfolio = generate(url, n, log=lambda s: common.line("", s.strip()))
        generate_s = time.perf_counter() - t0
        key = portfolio.keys["analyst"]
        year = date.today().year
        headers = {"Authorization": f"Bearer {key}"}
        console_staff(url)
        with common.Server(url, command=["-m", "bench.serve"]) as server:
            t_dash = timed_dashboard(server.base_url, year)
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=600) as client:
                for _ in range(5):  # warm-up: first-request costs, caches
                    client.get("/api/v1/fund/exposure").raise_for_status()
                    client.get(f"/api/v1/reports/summary?year={year}").raise_for_status()
                t_exp, exposure = timed_get(client, "/api/v1/fund/exposure", REQUESTS)
                t_sum, summary = timed_get(client, f"/api/v1/reports/summary?year={year}", REQUESTS)
        runs = 11 if n <= 100_000 else 5
        with psycopg.connect(common.libpq_url(url)) as conn:
            naive(conn, year, 1)  # warm the buffer cache as the served side's warm-up did
            n_exp, n_sum, naive_exposure, naive_summary = naive(conn, year, runs)
        result = SizeResult(
            loans=n,
            exposure_s=t_exp,
            summary_s=t_sum,
            dashboard_s=t_dash,
            naive_exposure_s=n_exp,
            naive_summary_s=n_sum,
            differences=compare(exposure, summary, naive_exposure, naive_summary),
            generate_s=generate_s,
        )
        memory = export_memory(url, headers) if last else None
    return result, memory


def export_memory(url: str, headers: dict[str, str]) -> dict[str, float]:
    """Peak RSS of a fresh server while it streams the loan register and the aging detail as CSV."""
    out: dict[str, float] = {}
    for label, path in (
        ("loan_register", "/bench/loan-register.csv"),
        ("aging_detail", "/api/v1/reports/aging?format=csv&detail=true"),
    ):
        with common.Server(url, command=["-m", "bench.serve"]) as server:
            start = server.memory_mib()["VmRSS"]
            size = lines = 0
            t0 = time.perf_counter()
            with httpx.stream("GET", f"{server.base_url}{path}", headers=headers, timeout=3600) as r:
                r.raise_for_status()
                for chunk in r.iter_bytes():
                    size += len(chunk)
                    lines += chunk.count(b"\n")
            out[f"{label}_seconds"] = time.perf_counter() - t0
            out[f"{label}_mib"] = size / 2**20
            out[f"{label}_lines"] = lines
            out[f"{label}_rss_start_mib"] = start
            out[f"{label}_peak_rss_mib"] = server.memory_mib()["VmHWM"]
    return out


def main() -> None:
    sizes = [10_000, common.scaled(100_000, 1_000_000)]
    common.header(f"reports at {sizes[0]:,} and {sizes[1]:,} loans")
    results: list[SizeResult] = []
    memory: dict[str, float] = {}
    for i, n in enumerate(sizes):
        common.line(f"{n:,} loans", "generating…")
        result, mem = measure_size(n, last=i == len(sizes) - 1)
        results.append(result)
        memory = mem or memory
        common.line(
            f"  {n:,}: exposure / summary",
            f"served {result.exposure_s * 1000:.1f} / {result.summary_s * 1000:.1f} ms "
            f"(median of {REQUESTS}); naive {result.naive_exposure_s * 1000:.1f} / "
            f"{result.naive_summary_s * 1000:.1f} ms; dashboard {result.dashboard_s * 1000:.1f} ms",
        )
    small, large = results[0], results[-1]
    flat_exp = large.exposure_s / small.exposure_s
    flat_sum = large.summary_s / small.summary_s
    flat_dash = large.dashboard_s / small.dashboard_s
    naive_exp = large.naive_exposure_s / large.exposure_s
    naive_sum = large.naive_summary_s / large.summary_s
    same = not any(r.differences for r in results)
    ok = common.verdict
    common.line(
        "exposure t(large) / t(10k)", f"{flat_exp:.2f}  (bar ≤ {BAR_FLAT})  {ok(flat_exp <= BAR_FLAT)}"
    )
    common.line(
        "summary t(large) / t(10k)", f"{flat_sum:.2f}  (bar ≤ {BAR_FLAT})  {ok(flat_sum <= BAR_FLAT)}"
    )
    common.line(
        "dashboard t(large) / t(10k)",
        f"{flat_dash:.2f}  (bar ≤ {BAR_FLAT})  {ok(flat_dash <= BAR_FLAT)}",
    )
    # the naive queries grow with the book: their bar is for 1,000,000 loans (the full profile)
    at_scale = large.loans >= 1_000_000

    def naive_verdict(value: float) -> str:
        if at_scale:
            return f"(bar ≥ {BAR_NAIVE:.0f})  {ok(value >= BAR_NAIVE)}"
        return f"(bar ≥ {BAR_NAIVE:.0f} at 1,000,000 loans: BENCH_PROFILE=full)"

    common.line("exposure naive / served", f"{naive_exp:.1f}  {naive_verdict(naive_exp)}")
    common.line("summary naive / served", f"{naive_sum:.1f}  {naive_verdict(naive_sum)}")
    common.line("same numbers, served and naive", ok(same))
    for r in results:
        for d in r.differences:
            common.line("  difference", d)
    for label in ("loan_register", "aging_detail"):
        peak = memory[f"{label}_peak_rss_mib"]
        common.line(
            f"peak RSS streaming {label} CSV",
            f"{peak:.0f} MiB for {memory[f'{label}_lines'] - 1:,.0f} lines, {memory[f'{label}_mib']:.0f} MiB "
            f"in {memory[f'{label}_seconds']:.1f} s (at start {memory[f'{label}_rss_start_mib']:.0f})  "
            f"(bar ≤ {BAR_EXPORT_MIB})  {ok(peak <= BAR_EXPORT_MIB)}",
        )
    common.save(
        "reports",
        {
            "sizes": sizes,
            "results": [r.__dict__ for r in results],
            "flat_exposure": flat_exp,
            "flat_summary": flat_sum,
            "flat_dashboard": flat_dash,
            "naive_over_served_exposure": naive_exp,
            "naive_over_served_summary": naive_sum,
            "same_numbers": same,
            "memory": memory,
        },
    )


if __name__ == "__main__":
    main()
