"""Load without loss: concurrent bank clients send mixed traffic to two server processes on
PostgreSQL for a fixed time, retrying requests with the same Idempotency-Key; afterwards there must be
no 5xx, no duplicate records, every replay identical to its first answer, and a reconciled ledger.

    python bench/load.py                      # 50 clients, 60 s (LOAD_CLIENTS, LOAD_SECONDS to change)

Not a test: it prints requests/s and p50/p99 latency and exits non-zero if any invariant fails.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from loanfund.audit.service import SYSTEM  # noqa: E402
from loanfund.core.clock import business_today  # noqa: E402
from loanfund.core.config import Settings  # noqa: E402
from loanfund.enterprises import service as enterprise_service  # noqa: E402
from loanfund.enterprises.credit_code import with_check_character  # noqa: E402
from loanfund.enterprises.schemas import EnterpriseCreate  # noqa: E402
from loanfund.fund import ledger  # noqa: E402
from loanfund.fund.contributions import record_contribution  # noqa: E402
from loanfund.fund.models import ContributionSource  # noqa: E402
from loanfund.loans.models import Loan, LoanEvent  # noqa: E402
from loanfund.portfolio import service as portfolio  # noqa: E402
from loanfund.rules import loan_rules  # noqa: E402
from loanfund.staff import service as staff_service  # noqa: E402
from loanfund.staff.models import Role  # noqa: E402

CLIENTS = int(os.environ.get("LOAD_CLIENTS", "50"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "60"))
BANKS = 5
ADMIN_URL = os.environ.get(
    "LOANFUND_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    replays: int = 0
    replay_mismatches: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, status: int, seconds: float, code: str | None) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.statuses[status] += 1
            if code:
                self.codes[code] += 1


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def setup(url: str, settings: Settings) -> tuple[list[str], list[str], str, str]:
    env = {**os.environ, "LOANFUND_DATABASE_URL": url}
    subprocess.run(
        [sys.executable, "-m", "loanfund.cli", "db", "upgrade"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    keys = []
    for i in range(BANKS):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "loanfund.cli",
                "bank",
                "create",
                "--name",
                f"Load bank {i}",
                "--code",
                f"LOAD{i}",
                "--allow-contracts-without-application",
            ],
            env={**env, "LOANFUND_SECRET_KEY": settings.secret_key.get_secret_value()},
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        keys.append(out.stdout.strip().splitlines()[-1])
    engine = create_engine(url)
    codes = []
    with Session(engine) as s:
        officer = staff_service.create_staff(s, SYSTEM, name="load officer", role=Role.officer)
        approver = staff_service.create_staff(s, SYSTEM, name="load approver", role=Role.approver)
        officer_key = staff_service.issue_key(s, settings, SYSTEM, staff=officer).secret
        approver_key = staff_service.issue_key(s, settings, SYSTEM, staff=approver).secret
        for n in range(200):
            code = with_check_character(f"91500114LD{n:07d}")
            enterprise_service.create_enterprise(
                s,
                SYSTEM,
                EnterpriseCreate(
                    credit_code=code,
                    name=f"重庆负载{n}有限公司",
                    industry="CIM"[n % 3],
                    tech_reg_no=f"L{n}",
                    grade="A",
                ),
            )
            codes.append(code)
        record_contribution(
            s,
            SYSTEM,
            source=ContributionSource.district,
            amount_fen=10**11,
            value_date=date(2020, 1, 1),
            budget_doc_no="LOAD-1",
        )
        s.commit()
    engine.dispose()
    return keys, codes, officer_key, approver_key


class BankClient(threading.Thread):
    def __init__(
        self, n: int, base: str, key: str, codes: list[str], today: date, stop: float, stats: Stats
    ) -> None:
        super().__init__(daemon=True)
        self.n, self.base, self.key, self.codes, self.today, self.stop, self.stats = (
            n,
            base,
            key,
            codes,
            today,
            stop,
            stats,
        )
        self.rng = random.Random(n)
        self.loans: list[int] = []
        self.sent: list[tuple[str, dict[str, Any], str, int, bytes]] = []
        self.seq = 0

    def post(self, c: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response | None:
        key = f"{self.n}-{self.seq}-{uuid.uuid4().hex[:6]}"
        self.seq += 1
        r = self.call(c, path, body, key)
        if r is not None and r.status_code < 500:
            self.sent.append((path, body, key, r.status_code, r.content))
        return r

    def call(self, c: httpx.Client, path: str, body: dict[str, Any], key: str) -> httpx.Response | None:
        t0 = time.perf_counter()
        try:
            r = c.post(path, json=body, headers={"Idempotency-Key": key})
        except httpx.TransportError:
            self.stats.note(599, time.perf_counter() - t0, "transport_error")
            return None
        code = r.json().get("error", {}).get("code") if r.status_code >= 400 else None
        self.stats.note(r.status_code, time.perf_counter() - t0, code)
        return r

    def run(self) -> None:
        d = self.today
        with httpx.Client(
            base_url=self.base, timeout=30, headers={"Authorization": f"Bearer {self.key}"}
        ) as c:
            while time.monotonic() < self.stop:
                roll = self.rng.random()
                ref = f"C{self.n}-{self.seq}"
                if roll < 0.25 or not self.loans:
                    r = self.post(
                        c,
                        "/api/v1/loans",
                        {
                            "bank_loan_ref": ref,
                            "credit_code": self.rng.choice(self.codes),
                            "amount": str(self.rng.randint(1, 30) * 10000),
                            "annual_rate_pct": "3.8",
                            "start_date": (d - timedelta(days=20)).isoformat(),
                            "maturity_date": (d + timedelta(days=300)).isoformat(),
                        },
                    )
                    if r is not None and r.status_code == 201:
                        lid = r.json()["id"]
                        d2 = self.post(
                            c,
                            f"/api/v1/loans/{lid}/disbursements",
                            {
                                "bank_event_ref": f"{ref}-d",
                                "date": (d - timedelta(days=19)).isoformat(),
                                "amount": r.json()["amount"],
                            },
                        )
                        if d2 is not None and d2.status_code == 201:
                            self.loans.append(lid)
                elif roll < 0.45:
                    lid = self.rng.choice(self.loans)
                    self.post(
                        c,
                        f"/api/v1/loans/{lid}/repayments",
                        {
                            "bank_event_ref": f"{ref}-r",
                            "date": (d - timedelta(days=1)).isoformat(),
                            "principal": "100.00",
                            "interest": "12.50",
                        },
                    )
                elif roll < 0.50:
                    lid = self.rng.choice(self.loans)
                    self.post(
                        c,
                        f"/api/v1/loans/{lid}/delinquency",
                        {
                            "bank_event_ref": f"{ref}-q",
                            "date": d.isoformat(),
                            "days_past_due": self.rng.choice([0, 0, 5, 40]),
                        },
                    )
                elif roll < 0.58:
                    items: list[dict[str, Any]] = []
                    for i in range(10):
                        bref = f"{ref}-b{i}"
                        items.append(
                            {
                                "type": "contract",
                                "bank_loan_ref": bref,
                                "credit_code": self.rng.choice(self.codes),
                                "amount": "50000",
                                "annual_rate_pct": "3.8",
                                "start_date": (d - timedelta(days=20)).isoformat(),
                                "maturity_date": (d + timedelta(days=300)).isoformat(),
                            }
                        )
                        items.append(
                            {
                                "type": "disbursement",
                                "bank_loan_ref": bref,
                                "bank_event_ref": f"{bref}-d",
                                "date": (d - timedelta(days=19)).isoformat(),
                                "amount": "50000",
                            }
                        )
                    self.post(c, "/api/v1/loans/batch", {"items": items})
                elif roll < 0.62 and self.loans:
                    lid = self.rng.choice(self.loans)
                    self.post(c, "/api/v1/claims", {"loan_id": lid, "principal_at_default": "100.00"})
                elif roll < 0.80:
                    t0 = time.perf_counter()
                    path = self.rng.choice(
                        [
                            "/api/v1/fund/exposure",
                            "/api/v1/loans?limit=20",
                            "/api/v1/claims",
                            "/api/v1/banks/me",
                        ]
                    )
                    try:
                        r = c.get(path)
                        self.stats.note(r.status_code, time.perf_counter() - t0, None)
                    except httpx.TransportError:
                        self.stats.note(599, time.perf_counter() - t0, "transport_error")
                elif self.sent:  # retry an earlier request with the same key and body
                    path, body, key, status, content = self.rng.choice(self.sent)
                    r = self.call(c, path, body, key)
                    with self.stats.lock:
                        self.stats.replays += 1
                        if (
                            r is None
                            or r.status_code != status
                            or r.content != content
                            or r.headers.get("idempotent-replayed") != "true"
                        ):
                            self.stats.replay_mismatches += 1


def main() -> int:
    name = f"loanfund_load_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = str(admin.url.set(database=name).render_as_string(hide_password=False))
    secret = "load-" + "k" * 48
    settings = Settings(database_url=url, secret_key=secret)  # type: ignore[arg-type]
    port = _free_port()
    proc = None
    try:
        keys, codes, _, _ = setup(url, settings)
        env = {
            **os.environ,
            "LOANFUND_DATABASE_URL": url,
            "LOANFUND_SECRET_KEY": secret,
            "LOANFUND_LOG_LEVEL": "WARNING",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "loanfund.cli", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        stats = Stats()
        today = business_today(settings)
        started = time.monotonic()
        clients = [
            BankClient(i, base, keys[i % BANKS], codes, today, started + SECONDS, stats)
            for i in range(CLIENTS)
        ]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        elapsed = time.monotonic() - started
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=20)

    failures = []
    engine = create_engine(url)
    with Session(engine) as s:
        loans = s.scalar(select(func.count()).select_from(Loan)) or 0
        distinct = (
            s.scalar(
                select(func.count()).select_from(
                    select(Loan.bank_id, Loan.bank_loan_ref).distinct().subquery()
                )
            )
            or 0
        )
        events = s.scalar(select(func.count()).select_from(LoanEvent)) or 0
        distinct_events = (
            s.scalar(
                select(func.count()).select_from(
                    select(LoanEvent.bank_id, LoanEvent.bank_event_ref).distinct().subquery()
                )
            )
            or 0
        )
        reconciled = ledger.reconcile(s).ok
        maintained = portfolio.snapshot_tables(s)
        portfolio.rebuild(s, loan_rules(settings))
        agrees = portfolio.snapshot_tables(s) == maintained
        s.rollback()
    engine.dispose()
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    total = sum(stats.statuses.values())
    lat = sorted(stats.latencies)
    p50 = statistics.median(lat) * 1000 if lat else 0.0
    p99 = lat[int(len(lat) * 0.99) - 1] * 1000 if lat else 0.0
    five_xx = sum(v for k, v in stats.statuses.items() if k >= 500)
    print(f"load: {CLIENTS} clients, {elapsed:.0f} s, 2 server processes, PostgreSQL")
    print(f"  requests: {total}  ({total / elapsed:.1f} req/s)   p50 {p50:.1f} ms   p99 {p99:.1f} ms")
    print(f"  statuses: {dict(sorted(stats.statuses.items()))}")
    print(f"  refusals: {dict(stats.codes.most_common(8))}")
    print(f"  replays:  {stats.replays} (mismatches {stats.replay_mismatches})")
    print(
        f"  records:  {loans} loans ({distinct} distinct refs), "
        f"{events} events ({distinct_events} distinct refs)"
    )
    print(f"  ledger reconciles: {reconciled}; portfolio aggregates equal a rebuild: {agrees}")
    if five_xx:
        failures.append(f"{five_xx} responses were 5xx")
    if stats.replay_mismatches:
        failures.append(f"{stats.replay_mismatches} replays differed from the first answer")
    if loans != distinct or events != distinct_events:
        failures.append("duplicate records")
    if not reconciled:
        failures.append("the ledger does not reconcile")
    if not agrees:
        failures.append("the portfolio aggregates drifted from the loans")
    for f in failures:
        print(f"FAIL: {f}")
    print("load: " + ("PASS" if not failures else "FAIL"))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
