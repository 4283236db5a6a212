"""Build a realistic portfolio of N loans with their events on PostgreSQL, fast.

    python -m bench.generate --loans 10000            # into a new database loanfund_bench_gen_<random>
    python -m bench.generate --loans 1000000 --keep   # keep it (its URL is printed), e.g. to explore

What it makes, in a fresh database migrated with `loanfund db upgrade`:

* partner banks, a bureau analyst, and a key for each (through the services, as the CLI does);
* N/4 registered tech enterprises (repeat borrowers), some high-tech, across industries (COPY);
* N loans starting between 2019 and last month, weighted towards recent years, each with its events —
  disbursements (some in two tranches), interest and principal repayments, delinquency reports — in all
  states: approved (not yet drawn), active, overdue, non-performing, settled, compensated, written off
  (COPY). Every loan's state is the replay of its events through `loans.state.apply`, the same rules the
  API applies, and each contract respects the term, rate-cap and credit-line rules in force on its date;
* every portfolio aggregate, rebuilt in SQL (`portfolio.rebuild.rebuild_in_sql`);
* the fund: yearly city/district contributions (4:6) sized to keep leverage near 6× at every year's peak,
  compensation paid to the banks for the compensated loans (reserve, then pay, per bank and month) and
  recoveries on the written-off ones — all through the ledger service, so the ledger balances and
  reconciles.

The same seed gives the same portfolio.
"""

from __future__ import annotations

import argparse
import bisect
import math
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.orm import Session

from bench import common
from loanfund.audit.service import Actor, record
from loanfund.banks import service as bank_service
from loanfund.core.clock import business_today
from loanfund.core.config import Settings
from loanfund.core.session import transaction
from loanfund.enterprises.credit_code import with_check_character
from loanfund.fund import contributions
from loanfund.fund import service as fund_service
from loanfund.fund.ledger import reconcile
from loanfund.fund.models import ContributionSource
from loanfund.loans.state import Contract, Event, EventKind, LoanState, Snapshot, apply
from loanfund.portfolio import rebuild
from loanfund.rates import service as rates
from loanfund.rules import LoanRules, add_months, loan_rules
from loanfund.staff import service as staff_service
from loanfund.staff.models import Role

ACTOR = Actor(kind="system", id=None, name="bench-generator")
FIRST_DAY = date(2019, 1, 2)
TARGET_LEVERAGE = 6  # fund sized so that covered outstanding stays near this multiple of its balance
BANKS = [
    ("CQRCB_QJ", "重庆农村商业银行黔江支行", "0.80", 30),
    ("CCB_QJ", "中国建设银行黔江支行", "0.80", 20),
    ("ICBC_QJ", "中国工商银行黔江支行", "0.80", 15),
    ("CQTGB_QJ", "重庆三峡银行黔江支行", "0.80", 15),
    ("ABC_QJ", "中国农业银行黔江支行", "0.70", 10),
    ("BOCQ_QJ", "重庆银行黔江支行", "0.70", 10),
]
INDUSTRIES = "CCCCCCCCCCIIIIIMMMMAAAEFLNOR"
GRADES = ["A"] * 10 + ["B"] * 25 + ["C"] * 30 + ["D"] * 15 + ["E"] * 5 + ["U"] * 15
AMOUNTS_YUAN = [100_000, 200_000, 300_000, 500_000, 800_000, 1_000_000, 1_500_000, 2_000_000, 3_000_000]
AMOUNT_WEIGHTS = [10, 15, 18, 20, 12, 12, 6, 5, 2]

LOAN_COLUMNS = (
    "id",
    "bank_id",
    "enterprise_id",
    "bank_loan_ref",
    "industry",
    "grade",
    "contract_amount_fen",
    "annual_rate_pct",
    "start_date",
    "maturity_date",
    "state",
    "disbursed_fen",
    "principal_repaid_fen",
    "interest_repaid_fen",
    "outstanding_fen",
    "days_past_due",
    "first_disbursed_on",
    "npl_since",
    "settled_on",
    "last_event_date",
    "compensated_on",
    "written_off_on",
    "created_at",
    "updated_at",
)
EVENT_COLUMNS = (
    "id",
    "loan_id",
    "bank_id",
    "bank_event_ref",
    "kind",
    "event_date",
    "principal_fen",
    "interest_fen",
    "days_past_due",
    "source",
    "created_at",
)
ENTERPRISE_COLUMNS = (
    "credit_code",
    "name",
    "region_code",
    "industry",
    "tech_reg_no",
    "tech_reg_date",
    "high_tech_cert_no",
    "high_tech_cert_expiry",
    "headcount",
    "checksum_override",
    "grade",
    "created_at",
    "updated_at",
)


# --- the registry ---------------------------------------------------------------------------------------


def credit_code(n: int) -> str:
    """A valid, distinct unified social credit code for each n < 10^9."""
    return with_check_character(f"91500114{n:09d}")


def enterprise_rows(n: int, rng: random.Random, first: int = 1) -> Iterator[tuple[Any, ...]]:
    now = datetime.now(UTC)
    for i in range(first, first + n):
        reg = date(2016, 1, 1) + timedelta(days=rng.randint(0, 1800))
        high_tech = rng.random() < 0.12
        issued = reg + timedelta(days=rng.randint(100, 900))
        yield (
            credit_code(i),
            f"重庆黔江测试科技有限公司{i}",
            "500114",
            rng.choice(INDUSTRIES),
            f"{reg.year}500114{i:07d}",
            reg,
            f"GR{issued.year}5110{i:06d}" if high_tech else None,
            add_months(issued, 36) - timedelta(days=1) if high_tech else None,
            rng.randint(8, 400),
            False,
            "A",  # a grade on record: historical contracts are checked against its credit line
            now,
            now,
        )


def copy_rows(
    conn: psycopg.Connection[Any], table: str, columns: Sequence[str], rows: Iterator[tuple[Any, ...]]
) -> int:
    count = 0
    with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


@dataclass
class Registry:
    banks: list[tuple[int, str, Decimal, int]]  # id, code, fund share, weight
    enterprises: list[tuple[int, str]]  # id, industry
    keys: dict[str, str] = field(default_factory=dict)  # who → key


def make_registry(
    engine: Engine, settings: Settings, n_enterprises: int, rng: random.Random, *, fund_yuan: int = 0
) -> Registry:
    """Banks, an analyst and their keys through the services; the enterprises by COPY; with `fund_yuan`,
    a contribution to the fund (dated 2017) so that the leverage cap admits lending through the API."""
    keys: dict[str, str] = {}
    banks = []
    with transaction(engine) as session:
        if fund_yuan:
            contributions.record_contribution(
                session,
                ACTOR,
                source=ContributionSource.district,
                amount_fen=fund_yuan * 100,
                value_date=date(2017, 1, 1),
                budget_doc_no="BENCH-FUND",
            )
        staff = staff_service.create_staff(session, ACTOR, name="bench analyst", role=Role.analyst)
        keys["analyst"] = staff_service.issue_key(session, settings, ACTOR, staff=staff, label="bench").secret
        for code, name, share, weight in BANKS:
            bank = bank_service.create_bank(
                session,
                ACTOR,
                code=code,
                name=name,
                fund_share=Decimal(share),
                allow_contracts_without_application=True,
            )
            fund_service.ensure_bank_accounts(session, ACTOR, bank.id)
            keys[f"bank {code}"] = staff_service.issue_key(
                session, settings, ACTOR, bank=bank, label="bench"
            ).secret
            banks.append((bank.id, code, bank.fund_share, weight))
    with psycopg.connect(common.libpq_url(engine.url.render_as_string(hide_password=False))) as conn:
        copy_rows(conn, "enterprises", ENTERPRISE_COLUMNS, enterprise_rows(n_enterprises, rng))
        enterprises = [(int(r[0]), str(r[1])) for r in conn.execute("SELECT id, industry FROM enterprises")]
    return Registry(banks=banks, enterprises=enterprises, keys=keys)


# --- loans and their events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rules:
    """The dated tables a contract must respect, read once: LPR (rate cap) and credit lines."""

    lpr_dates: list[date]
    lpr_bp: list[int]  # LPR in basis points
    cap_bp: int
    line_dates: list[date]
    lines: list[dict[str, int]]  # grade → line in fen
    max_term_months: int
    loan_rules: LoanRules

    @classmethod
    def load(cls, session: Session, settings: Settings) -> Rules:
        lpr = rates.list_lpr(session)
        tables = rates.list_credit_line_tables(session)
        return cls(
            lpr_dates=[r.effective_date for r in lpr],
            lpr_bp=[int(r.rate_pct * 100) for r in lpr],
            cap_bp=settings.rate_cap_bp,
            line_dates=sorted(tables),
            lines=[tables[d] for d in sorted(tables)],
            max_term_months=settings.max_term_months,
            loan_rules=loan_rules(settings),
        )

    def max_rate_bp(self, day: date) -> int:
        return self.lpr_bp[bisect.bisect_right(self.lpr_dates, day) - 1] + self.cap_bp

    def line_fen(self, day: date, grade: str) -> int:
        table = self.lines[bisect.bisect_right(self.line_dates, day) - 1]
        return table[grade] if grade in table else max(table.values())


@dataclass
class Generated:
    loans: int = 0
    events: int = 0
    by_state: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class LoanMaker:
    """Makes one loan at a time: the contract, its events in date order up to `today`, and its row."""

    def __init__(
        self, rng: random.Random, registry: Registry, rules: Rules, today: date, created: datetime
    ) -> None:
        self.rng = rng
        self.rules = rules
        self.today = today
        self.created = created
        self.span = (today - timedelta(days=20) - FIRST_DAY).days
        self.banks = registry.banks
        self.bank_weights = [b[3] for b in registry.banks]
        self.enterprises = registry.enterprises
        self.stats = Generated()

    def start_date(self) -> date:
        u = self.rng.random()
        # a third uniform, the rest growing linearly with time: the programme grows
        t = u * 3 if u < 1 / 3 else math.sqrt((u - 1 / 3) * 1.5)
        return FIRST_DAY + timedelta(days=min(self.span, int(self.span * min(t, 1.0))))

    def make(self, loan_id: int, event_id: int) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
        rng, rules = self.rng, self.rules
        bank_id, bank_code, _share, _w = rng.choices(self.banks, self.bank_weights)[0]
        enterprise_id, industry = self.enterprises[rng.randrange(len(self.enterprises))]
        start = self.start_date()
        term = rng.choice((6, 9, 12, 12, 12))
        maturity = add_months(start, min(term, rules.max_term_months))
        grade = rng.choice(GRADES)
        line = rules.line_fen(start, grade)
        amount = min(rng.choices(AMOUNTS_YUAN, AMOUNT_WEIGHTS)[0] * 100, line)
        rate_bp = rules.max_rate_bp(start) - rng.choice((0, 25, 50, 75, 100, 125, 150))
        contract = Contract(amount, start, maturity)
        events = list(self._events(contract, rate_bp))
        snap = Snapshot()
        rows: list[tuple[Any, ...]] = []
        ref = f"{bank_code}-{start.year}-{loan_id:08d}"
        for k, ev in enumerate(events):
            snap = apply(snap, contract, ev, rules.loan_rules)
            rows.append(
                (
                    event_id + k,
                    loan_id,
                    bank_id,
                    f"{ref}-{k + 1}",
                    ev.kind.name,
                    ev.event_date,
                    ev.principal_fen,
                    ev.interest_fen,
                    ev.days_past_due if ev.kind is EventKind.delinquency else None,
                    "batch",
                    self.created,
                )
            )
        state = snap.state
        compensated_on = written_off_on = None
        if state is LoanState.non_performing and snap.npl_since is not None and rng.random() < 0.45:
            day = max(snap.npl_since, snap.last_event_date or start) + timedelta(days=rng.randint(30, 150))
            if day <= self.today:
                compensated_on, state = day, LoanState.compensated
                off = day + timedelta(days=rng.randint(90, 400))
                if rng.random() < 0.5 and off <= self.today:
                    written_off_on, state = off, LoanState.written_off
        self.stats.loans += 1
        self.stats.events += len(rows)
        self.stats.by_state[state.value] += 1
        loan = (
            loan_id,
            bank_id,
            enterprise_id,
            ref,
            industry,
            grade,
            amount,
            Decimal(rate_bp) / 100,
            start,
            maturity,
            state.name,
            snap.disbursed_fen,
            snap.principal_repaid_fen,
            snap.interest_repaid_fen,
            snap.outstanding_fen,
            snap.days_past_due,
            snap.first_disbursed_on,
            snap.npl_since,
            snap.settled_on,
            snap.last_event_date,
            compensated_on,
            written_off_on,
            self.created,
            self.created,
        )
        return loan, rows

    def _events(self, c: Contract, rate_bp: int) -> Iterator[Event]:
        """The loan's story, cut at today: nothing a bank could not have reported yet."""
        rng, today, npl = self.rng, self.today, self.rules.loan_rules.npl_days
        recent = (today - c.start_date).days < 45
        if (recent and rng.random() < 0.4) or rng.random() < 0.005:
            return  # contracted, not drawn yet
        day = c.start_date + timedelta(days=rng.randint(0, 6))
        if day > today:
            return
        outstanding = 0
        if rng.random() < 0.15 and (c.maturity_date - day).days > 90:
            first = c.amount_fen * rng.choice((5, 6, 7)) // 10 // 10_000 * 10_000
            yield Event(EventKind.disbursement, day, principal_fen=first)
            outstanding = first
            day += timedelta(days=rng.randint(20, 45))
            if day > today:
                return
            yield Event(EventKind.disbursement, day, principal_fen=c.amount_fen - first)
            outstanding = c.amount_fen
        else:
            yield Event(EventKind.disbursement, day, principal_fen=c.amount_fen)
            outstanding = c.amount_fen
        last = day

        def interest(upto: date) -> int:
            return max(1, outstanding * rate_bp * (upto - last).days // 3_650_000)

        fate = rng.random()
        # half-way: interest, and for most loans a first part of the principal
        mid = c.start_date + (c.maturity_date - c.start_date) / 2
        if mid > last:
            if mid > today:
                return
            if fate > 0.95:  # late at half-term: reported overdue, then cured
                dpd = rng.randint(5, 75)
                yield Event(EventKind.delinquency, mid, days_past_due=dpd)
                mid += timedelta(days=dpd)
                if mid > today:
                    return
                yield Event(EventKind.delinquency, mid, days_past_due=0)
            part = outstanding * rng.choice((0, 0, 1, 2, 3)) // 10 // 100 * 100
            yield Event(EventKind.repayment, mid, principal_fen=part, interest_fen=interest(mid))
            outstanding -= part
            last = mid
        if fate < 0.86:  # repaid at maturity
            end = c.maturity_date
            if end > today:
                return
            yield Event(EventKind.repayment, end, principal_fen=outstanding, interest_fen=interest(end))
            return
        # late at maturity
        late = c.maturity_date + timedelta(days=rng.randint(5, 30))
        if late > today:
            return
        yield Event(EventKind.delinquency, late, days_past_due=(late - c.maturity_date).days)
        if fate < 0.92:  # cured: repays within a few weeks
            paid = late + timedelta(days=rng.randint(1, 40))
            if paid > today:
                return
            yield Event(EventKind.repayment, paid, principal_fen=outstanding, interest_fen=interest(paid))
            return
        # non-performing
        npl_day = c.maturity_date + timedelta(days=npl + rng.randint(0, 40))
        if npl_day > today:
            return
        yield Event(EventKind.delinquency, npl_day, days_past_due=(npl_day - c.maturity_date).days)
        if fate < 0.95:  # a late recovery: cured and repaid
            paid = npl_day + timedelta(days=rng.randint(20, 200))
            if paid > today:
                return
            yield Event(EventKind.delinquency, paid, days_past_due=0)
            yield Event(EventKind.repayment, paid, principal_fen=outstanding, interest_fen=interest(paid))
        elif fate < 0.975:  # some principal comes back, the rest stays non-performing
            paid = npl_day + timedelta(days=rng.randint(10, 120))
            if paid <= today:
                part = outstanding // 4 // 100 * 100
                if part:
                    yield Event(EventKind.repayment, paid, principal_fen=part, interest_fen=0)


def copy_loans(
    conn: psycopg.Connection[Any],
    maker: LoanMaker,
    n: int,
    first_loan_id: int = 1,
    first_event_id: int = 1,
    chunk: int = 50_000,
) -> Generated:
    """COPY `n` loans, then their events, `chunk` loans at a time (events refer to their loan)."""
    event_id = first_event_id
    cur = conn.cursor()
    for lo in range(first_loan_id, first_loan_id + n, chunk):
        pending: list[tuple[Any, ...]] = []
        with cur.copy(f"COPY loans ({', '.join(LOAN_COLUMNS)}) FROM STDIN") as loans:
            for loan_id in range(lo, min(lo + chunk, first_loan_id + n)):
                loan, events = maker.make(loan_id, event_id)
                loans.write_row(loan)
                pending.extend(events)
                event_id += len(events)
        with cur.copy(f"COPY loan_events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
            for row in pending:
                copy.write_row(row)
    return maker.stats


# --- the fund -----------------------------------------------------------------------------------------------


def _round_up(fen: int, step: int = 10_000_000) -> int:
    return -(-fen // step) * step


def fund_history(session: Session, registry: Registry, today: date) -> dict[str, int]:
    """Contributions before the lending they support, compensation for the compensated loans, and
    recoveries on the written-off ones — all through the ledger service."""
    share = {b[0]: b[2] for b in registry.banks}
    payouts: dict[tuple[int, date], int] = defaultdict(int)
    recoveries: dict[tuple[int, int], int] = defaultdict(int)
    rows = session.execute(
        text(
            "SELECT bank_id, compensated_on, written_off_on, outstanding_fen FROM loans "
            "WHERE compensated_on IS NOT NULL"
        )
    )
    for bank_id, comp_on, off_on, outstanding in rows:
        month_end = min(add_months(comp_on.replace(day=1), 1) - timedelta(days=1), today)
        fen = int(Decimal(outstanding) * share[bank_id])
        payouts[(bank_id, month_end)] += fen
        if off_on is not None:
            recoveries[(bank_id, off_on.year)] += fen // 10
    paid_by_year: dict[int, int] = defaultdict(int)
    for (_, day), fen in payouts.items():
        paid_by_year[day.year] += fen
    # the year's peak covered outstanding, from the daily aggregates
    peaks: dict[int, int] = dict(
        session.execute(
            text(
                "SELECT extract(year FROM day)::int, max(covered) FROM ("
                " SELECT day, sum(sum(d_covered_fen)) OVER (ORDER BY day) AS covered"
                " FROM portfolio_daily GROUP BY day) s GROUP BY 1"
            )
        ).all()
    )
    contributed = paid = 0
    n_docs = 0
    for year in range(FIRST_DAY.year, today.year + 1):
        paid += paid_by_year.get(year, 0)
        need = _round_up(int(peaks.get(year, 0)) // TARGET_LEVERAGE + paid)
        if need <= contributed:
            continue
        amount = need - contributed
        city = amount * 4 // 10
        for source, fen in ((ContributionSource.city, city), (ContributionSource.district, amount - city)):
            n_docs += 1
            contributions.record_contribution(
                session,
                ACTOR,
                source=source,
                amount_fen=fen,
                value_date=date(year, 1, 1),
                budget_doc_no=f"QJCZ-{year}-{n_docs:03d}",
                memo=f"{year} {source.value} budget",
            )
        contributed = need
    for (bank_id, day), fen in sorted(payouts.items(), key=lambda p: (p[0][1], p[0][0])):
        ref = f"bench-{bank_id}-{day:%Y%m}"
        fund_service.reserve(session, ACTOR, fen, day, "bench_claims", ref)
        fund_service.pay_reserved(session, ACTOR, fen, bank_id, day, "bench_claims", ref)
    for (bank_id, year), fen in sorted(recoveries.items()):
        day = min(date(year, 12, 31), today)
        ref = f"bench-{bank_id}-{year}"
        fund_service.recognise_recovery_receivable(session, ACTOR, fen, bank_id, day, "bench_recovery", ref)
        fund_service.settle_recovery(session, ACTOR, fen, bank_id, day, "bench_recovery", ref)
    return {
        "contributed_fen": contributed,
        "compensation_paid_fen": sum(payouts.values()),
        "recovered_fen": sum(recoveries.values()),
        "payout_batches": len(payouts),
    }


# --- all of it ----------------------------------------------------------------------------------------


@dataclass
class Portfolio:
    url: str
    loans: int
    events: int
    keys: dict[str, str]
    by_state: dict[str, int]
    fund: dict[str, int]
    seconds: dict[str, float]


def generate(url: str, n_loans: int, *, seed: int = 2021, log: Callable[[str], None] = print) -> Portfolio:
    """Fill the migrated, empty database at `url` with a portfolio of `n_loans` loans."""
    settings = Settings(database_url=url, env="dev")
    engine = create_engine(url)
    rng = random.Random(seed)
    today = business_today(settings)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    registry = make_registry(engine, settings, max(50, n_loans // 4), rng)
    seconds["registry"] = time.perf_counter() - t0
    with transaction(engine) as session:
        rules = Rules.load(session, settings)
    created = datetime.now(UTC)
    maker = LoanMaker(rng, registry, rules, today, created)

    t0 = time.perf_counter()
    libpq = common.libpq_url(url)
    with psycopg.connect(libpq) as conn:
        stats = copy_loans(conn, maker, n_loans)
        conn.execute("SELECT setval('loans_id_seq', (SELECT max(id) FROM loans))")
        conn.execute("SELECT setval('loan_events_id_seq', (SELECT max(id) FROM loan_events))")
    seconds["loans_copy"] = time.perf_counter() - t0
    log(f"  {stats.loans:,} loans and {stats.events:,} events copied in {seconds['loans_copy']:.1f} s")

    t0 = time.perf_counter()
    with transaction(engine) as session:
        rebuild.rebuild_in_sql(session, loan_rules(settings))
    seconds["aggregates_sql"] = time.perf_counter() - t0
    log(f"  portfolio aggregates rebuilt in SQL in {seconds['aggregates_sql']:.1f} s")

    t0 = time.perf_counter()
    with transaction(engine) as session:
        fund = fund_history(session, registry, today)
        record(
            session,
            ACTOR,
            "bench.generate",
            "portfolio",
            "bulk",
            after={"loans": stats.loans, "events": stats.events, "seed": seed},
        )
    with transaction(engine) as session:
        check = reconcile(session)
    if not check.ok:
        raise RuntimeError(f"the generated ledger does not reconcile: {check}")
    fund["ledger_transactions"] = check.transactions_checked
    seconds["fund"] = time.perf_counter() - t0
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    engine.dispose()
    return Portfolio(
        url=url,
        loans=stats.loans,
        events=stats.events,
        keys=registry.keys,
        by_state=dict(stats.by_state),
        fund=fund,
        seconds=seconds,
    )


def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as c:
        out = {
            t: int(c.scalar(select(func.count()).select_from(text(t))) or 0)
            for t in ("loans", "loan_events", "enterprises", "portfolio_daily", "portfolio_monthly")
        }
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--loans", type=int, default=common.scaled(10_000, 1_000_000))
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument("--keep", action="store_true", help="keep the database (its URL is printed)")
    args = parser.parse_args()
    common.header(f"generate {args.loans:,} loans")
    name = f"loanfund_bench_gen_{uuid.uuid4().hex[:8]}"
    url = common.create_database(name)
    try:
        t0 = time.perf_counter()
        common.migrate(url)
        p = generate(url, args.loans, seed=args.seed)
        total = time.perf_counter() - t0
        common.line("loans / events", f"{p.loans:,} / {p.events:,}")
        common.line("states", ", ".join(f"{k} {v:,}" for k, v in sorted(p.by_state.items())))
        common.line(
            "fund contributed / paid (yuan)",
            f"{p.fund['contributed_fen'] / 100:,.0f} / {p.fund['compensation_paid_fen'] / 100:,.0f}",
        )
        common.line("ledger", f"{p.fund['ledger_transactions']:,} transactions, reconciled")
        common.line(
            "seconds", ", ".join(f"{k} {v:.1f}" for k, v in p.seconds.items()) + f"; total {total:.1f}"
        )
        common.line(
            "rows per second (loans+events)", f"{(p.loans + p.events) / p.seconds['loans_copy']:,.0f}"
        )
        if args.keep:
            common.line("database kept", url)
    finally:
        if not args.keep:
            common.drop_database(name)


if __name__ == "__main__":
    main()
