"""`loanfund demo` on an empty database reproduces the seed district's 2021 figures, through the same
rules as live data, and the same seed gives the same database."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, aliased

from loanfund.app import create_app
from loanfund.applications.models import Application, ApplicationStatus
from loanfund.audit.models import AuditRecord
from loanfund.audit.service import SYSTEM
from loanfund.banks.models import Bank, BankStatus
from loanfund.claims.models import Claim, ClaimState, Recovery, RecoveryKind
from loanfund.cli import app as cli
from loanfund.core.config import Settings
from loanfund.core.db import make_engine
from loanfund.core.migrations import upgrade
from loanfund.demo import plan, work
from loanfund.demo.seed import seed_demo
from loanfund.enterprises.models import Enterprise
from loanfund.fund import breakers, ledger
from loanfund.fund import service as fund_service
from loanfund.fund.models import Contribution, LedgerAccount, LedgerEntry, LedgerTransaction
from loanfund.loans.models import Loan, LoanEvent
from loanfund.loans.state import EventKind, LoanState
from loanfund.portfolio import service as portfolio
from loanfund.portfolio.models import PortfolioMonthly
from loanfund.rates import service as rates
from loanfund.reports import service as reports
from loanfund.risk import stress
from loanfund.risk.models import BankRating, StressTestRun
from loanfund.risk.schemas import StressTestCreate
from loanfund.rules import add_months, loan_rules
from loanfund.staff import signin
from loanfund.staff.models import Role, Staff
from loanfund.status_reports.models import Discrepancy
from tests.demo.conftest import Demo, cli_env, runner

WAN = 1_000_000  # fen
FEN = 100


@pytest.fixture
def session(demo: Demo) -> Iterator[Session]:
    with Session(demo.engine) as s:
        yield s
        s.rollback()


def _disbursed(session: Session, start: date, end: date) -> tuple[int, int]:
    row = session.execute(
        select(
            func.coalesce(func.sum(PortfolioMonthly.disbursed_fen), 0),
            func.coalesce(func.sum(PortfolioMonthly.loans_started), 0),
        ).where(PortfolioMonthly.month.between(start, end))
    ).one()
    return int(row[0]), int(row[1])


def test_2021_lending_and_the_cumulative_total(session: Session) -> None:
    amount, count = _disbursed(session, date(2021, 1, 1), date(2021, 12, 1))
    assert (count, amount) == (64, 95_060_000 * FEN)
    cumulative, _ = _disbursed(session, date(2017, 1, 1), date(2021, 12, 1))
    assert cumulative == 237_000_000 * FEN
    # the aggregates agree with the events and the loans they come from
    in_2021 = session.scalar(
        select(func.sum(LoanEvent.principal_fen)).where(
            LoanEvent.kind == EventKind.disbursement,
            LoanEvent.event_date.between(date(2021, 1, 1), date(2021, 12, 31)),
        )
    )
    assert in_2021 == 95_060_000 * FEN
    first_in_2021 = select(func.count()).where(
        Loan.first_disbursed_on.between(date(2021, 1, 1), date(2021, 12, 31))
    )
    assert session.scalar(first_in_2021) == 64
    # the history ends with 2021; the final step (demo.work) adds only a delinquency report in 2022
    last = session.scalar(select(func.max(LoanEvent.event_date)).where(LoanEvent.event_date != work.DAY))
    assert last is not None
    assert last <= date(2021, 12, 31)
    late = set(session.scalars(select(LoanEvent.kind).where(LoanEvent.event_date > date(2021, 12, 31))))
    assert late == {EventKind.delinquency}


def test_the_fund(session: Session) -> None:
    end = fund_service.fund_position(session, date(2021, 12, 31))
    assert end.fund_size_fen == 10_000_000 * FEN
    assert end.contributions_fen == {"city": 4_000_000 * FEN, "district": 6_000_000 * FEN}
    by_source = dict(
        session.execute(
            select(Contribution.source, func.sum(Contribution.amount_fen))
            .where(Contribution.value_date.between(date(2021, 1, 1), date(2021, 12, 31)))
            .group_by(Contribution.source)
        ).all()
    )
    assert {k.value: v for k, v in by_source.items()} == {
        "city": 2_000_000 * FEN,
        "district": 3_000_000 * FEN,
    }
    before = fund_service.fund_position(session, date(2020, 12, 31))
    assert before.fund_size_fen == 5_000_000 * FEN
    assert before.contributions_fen == {"city": 2_000_000 * FEN, "district": 3_000_000 * FEN}
    # the balance is the fund size less compensation paid plus recoveries received
    assert end.compensation_paid_fen > 0
    assert end.balance_fen == (end.fund_size_fen - end.compensation_paid_fen + end.recoveries_received_fen)
    assert ledger.reconcile(session).ok


def test_the_registry(session: Session) -> None:
    registered = select(func.count()).where(Enterprise.tech_reg_no.is_not(None))
    assert session.scalar(registered) == 398
    assert session.scalar(registered.where(Enterprise.tech_reg_date >= date(2021, 1, 1))) == 48
    assert session.scalar(select(func.count()).where(Enterprise.high_tech_cert_no.is_not(None))) == 41
    borrowers = session.scalar(select(func.count(func.distinct(Loan.enterprise_id))))
    assert borrowers is not None
    assert borrowers >= 100
    unregistered_borrowers = (
        select(func.count())
        .select_from(Loan)
        .join(Enterprise, Enterprise.id == Loan.enterprise_id)
        .where((Enterprise.tech_reg_date > Loan.start_date) | Enterprise.tech_reg_no.is_(None))
    )
    assert session.scalar(unregistered_borrowers) == 0


def test_every_loan_keeps_the_rules(session: Session, demo: Demo) -> None:
    loans = session.scalars(select(Loan)).all()
    assert len(loans) == sum(count for count, _ in plan.YEARS.values())
    for loan in loans:
        assert loan.maturity_date <= add_months(loan.start_date, 12), loan.bank_loan_ref
        assert loan.annual_rate_pct <= rates.max_rate_on(session, demo.settings, loan.start_date)
        assert loan.contract_amount_fen <= max(rates.credit_line_table_on(session, loan.start_date).values())
        assert loan.first_disbursed_on == loan.start_date
        assert loan.disbursed_fen == loan.contract_amount_fen
    banks = session.execute(select(Loan.bank_id, func.count()).group_by(Loan.bank_id)).all()
    assert len(banks) == 4
    assert all(n >= 20 for _, n in banks)
    # applications approved by the bank, within their credit line, and lent against
    lent = session.scalars(select(Application).where(Application.status == ApplicationStatus.lent)).all()
    assert len(lent) >= 15
    for app in lent:
        made = session.scalar(select(Loan).where(Loan.application_id == app.id))
        assert made is not None
        assert app.approved_amount_fen is not None
        assert app.credit_line_fen is not None
        assert made.contract_amount_fen <= app.approved_amount_fen <= app.credit_line_fen
        assert made.grade == app.grade
    statuses = set(session.scalars(select(Application.status)))
    assert statuses == set(ApplicationStatus)


def test_every_report_has_content(session: Session) -> None:
    states = dict(session.execute(select(Loan.state, func.count()).group_by(Loan.state)).all())
    for state in (LoanState.active, LoanState.overdue, LoanState.non_performing, LoanState.settled):
        assert states.get(state, 0) >= 1, state
    assert states.get(LoanState.compensated, 0) + states.get(LoanState.written_off, 0) >= 3
    assert states.get(LoanState.written_off, 0) >= 1
    # overdue loans in each aging bucket at the end of 2021 (a loan the final step reports again in 2022,
    # `demo.work`, counts with its last report of 2021)
    moved = set(session.scalars(select(LoanEvent.loan_id).where(LoanEvent.event_date == work.DAY)))
    dpd = sorted(
        session.scalars(select(Loan.days_past_due).where(Loan.days_past_due > 0, Loan.id.not_in(moved)))
    )
    for loan_id in moved:
        last_of_2021 = session.scalar(
            select(LoanEvent.days_past_due)
            .where(LoanEvent.loan_id == loan_id, LoanEvent.kind == EventKind.delinquency)
            .where(LoanEvent.event_date <= date(2021, 12, 31))
            .order_by(LoanEvent.event_date.desc(), LoanEvent.id.desc())
            .limit(1)
        )
        assert last_of_2021 is not None
        dpd.append(last_of_2021)
    assert any(1 <= d <= 30 for d in dpd)
    assert any(31 <= d <= 60 for d in dpd)
    assert any(61 <= d <= 90 for d in dpd)
    assert any(d > 90 for d in dpd)

    reviewer, payer = aliased(Staff), aliased(Staff)
    paid = session.execute(
        select(Claim, reviewer.role, payer.role)
        .join(reviewer, reviewer.id == Claim.reviewed_by)
        .join(payer, payer.id == Claim.paid_by)
        .where(Claim.state == ClaimState.paid)
    ).all()
    assert len(paid) >= 3
    for claim, reviewer_role, payer_role in paid:
        assert (reviewer_role, payer_role) == (Role.officer, Role.approver)
        assert claim.paid_fen == claim.claimed_fen == claim.principal_fen * 8 // 10
    remitted = session.scalar(
        select(func.count()).where(Recovery.kind == RecoveryKind.remittance, Recovery.fund_share_fen > 0)
    )
    assert remitted is not None
    assert remitted >= 1
    closed = session.scalar(select(func.count()).where(Claim.collection_closed_on.is_not(None)))
    assert closed is not None
    assert closed >= 1
    kinds = set(session.scalars(select(Discrepancy.kind)))
    assert {"balance_mismatch", "missing_from_report", "unknown_loan"} <= kinds


def test_no_breaker_tripped(session: Session, demo: Demo) -> None:
    """No breaker tripped in the history (the replay refuses a day that ends with a bank suspended): the
    only one tripped is by the January 2022 report the final step adds (`demo.work`), and every bank's
    NPL ratio at the end of 2021 is below the suspension line."""
    rows = breakers.list_breakers(session)
    assert rows
    reported_in_2022 = set(session.scalars(select(LoanEvent.bank_id).where(LoanEvent.event_date == work.DAY)))
    tripped = {b.bank_id for b in rows if b.state is breakers.BreakerState.suspended}
    assert tripped == reported_in_2022
    assert all(b.state is not breakers.BreakerState.stopped for b in rows)
    assert not any(b.lifted for b in rows)
    by_bank = reports.by_bank(session, reports.Scope(None), 2021)
    assert by_bank.lines
    assert all((line.figures.npl_ratio or 0) < demo.settings.breaker_suspend_ratio for line in by_bank.lines)
    for year in range(2017, 2022):
        paid, size, _ = breakers.programme_ratio(session, date(year, 6, 30))
        assert paid * 2 < size


def test_work_is_left_in_every_queue(session: Session) -> None:
    """Claims awaiting review and payout (the payout by another approver than the reviewer), applications
    awaiting the bank or a re-grade, a suspended bank, and console sign-ins for the demo staff."""
    late = list(session.scalars(select(Claim).where(Claim.filed_on == work.DAY).order_by(Claim.id)))
    assert [c.state for c in late] == [ClaimState.approved, ClaimState.submitted]
    reviewer = session.get(Staff, late[0].reviewed_by)
    assert reviewer is not None
    assert reviewer.role is Role.approver
    statuses = set(session.scalars(select(Application.status)))
    assert ApplicationStatus.pending_bank in statuses
    assert ApplicationStatus.ineligible in statuses
    suspended = session.scalars(select(Bank.code).where(Bank.status == BankStatus.suspended)).all()
    assert suspended == [work.SUSPENDED_BANK]
    logins = {s.login: s.role for s in work.sign_ins(session)}
    assert set(logins) == set(work.DEMO_LOGINS.values())
    assert set(logins.values()) == set(Role)
    staff = session.scalar(select(Staff).where(Staff.login == "zhao.fh"))
    assert signin.password_matches(staff, work.DEMO_PASSWORD)
    # the risk page's first run (later tests add their own): the analyst's baseline at the end of 2021
    run = session.scalars(select(StressTestRun).order_by(StressTestRun.id)).first()
    assert run is not None
    assert (run.preset, run.as_of, run.created_by_name) == ("baseline", date(2021, 12, 31), "staff:王分析")


def test_the_aggregates_equal_a_rebuild(session: Session, demo: Demo) -> None:
    kept = portfolio.snapshot_tables(session)
    with session.begin_nested() as savepoint:
        portfolio.rebuild(session, loan_rules(demo.settings))
        rebuilt = portfolio.snapshot_tables(session)
        savepoint.rollback()
    assert kept == rebuilt
    assert portfolio.snapshot_tables(session) == kept


def test_the_summary_report(demo: Demo) -> None:
    app = create_app(demo.settings, demo.engine)
    key = next(v for k, v in demo.keys.items() if k.startswith("staff analyst"))
    with TestClient(app) as client:
        r = client.get("/api/v1/reports/summary?year=2021", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["year"] == 2021
    assert body["loans_disbursed_count"] == 64
    assert body["loans_disbursed_amount"] == "95060000.00"
    assert body["cumulative_disbursed_amount"] == "237000000.00"
    assert body["fund_size"] == "10000000.00"


def test_the_command_keeps_its_behaviour(demo: Demo) -> None:
    assert demo.keys_file.stat().st_mode & 0o777 == 0o600
    assert {k.split()[0] for k in demo.keys} == {"staff", "bank"}
    with cli_env(demo.url):
        r = runner.invoke(cli, ["demo", "--if-empty"])
        assert r.exit_code == 0, r.output
        assert "skipped" in r.output
        assert runner.invoke(cli, ["demo"]).exit_code == 1


# --- the same seed, the same data ---------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):  # a rating's measures: the loans behind them by reference, not by id
        return json.dumps(
            [{**m, "loans": [loan["bank_loan_ref"] for loan in m["loans"]]} for m in value], sort_keys=True
        )
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return value


def _rows(session: Session, stmt: Any) -> list[tuple[Any, ...]]:
    return sorted((tuple(_plain(v) for v in row) for row in session.execute(stmt)), key=repr)


def digest(engine: Engine) -> dict[str, str]:
    """A digest of each table's business columns, with rows named by their natural keys (not their
    ids) and without timestamps, so that it is the same on either backend."""
    loan_ref = select(Loan.id, Bank.code, Loan.bank_loan_ref).join(Bank, Bank.id == Loan.bank_id).subquery()
    queries: dict[str, Any] = {
        "enterprises": select(
            Enterprise.credit_code,
            Enterprise.name,
            Enterprise.industry,
            Enterprise.tech_reg_no,
            Enterprise.tech_reg_date,
            Enterprise.high_tech_cert_no,
            Enterprise.high_tech_cert_expiry,
            Enterprise.headcount,
        ),
        "loans": select(
            Bank.code,
            Loan.bank_loan_ref,
            Enterprise.credit_code,
            Loan.grade,
            Loan.contract_amount_fen,
            Loan.annual_rate_pct,
            Loan.start_date,
            Loan.maturity_date,
            Loan.state,
            Loan.disbursed_fen,
            Loan.principal_repaid_fen,
            Loan.interest_repaid_fen,
            Loan.outstanding_fen,
            Loan.days_past_due,
            Loan.npl_since,
            Loan.settled_on,
            Loan.compensated_on,
            Loan.written_off_on,
        )
        .join(Bank, Bank.id == Loan.bank_id)
        .join(Enterprise, Enterprise.id == Loan.enterprise_id),
        "loan_events": select(
            loan_ref.c.bank_loan_ref,
            LoanEvent.bank_event_ref,
            LoanEvent.kind,
            LoanEvent.event_date,
            LoanEvent.principal_fen,
            LoanEvent.interest_fen,
            LoanEvent.days_past_due,
        ).join(loan_ref, loan_ref.c.id == LoanEvent.loan_id),
        "applications": select(
            Application.credit_code,
            Application.application_date,
            Application.status,
            Application.requested_amount_fen,
            Application.score,
            Application.grade,
            Application.credit_line_fen,
            Application.decision_date,
            Application.approved_amount_fen,
            Application.approved_rate_pct,
        ),
        "contributions": select(
            Contribution.source, Contribution.amount_fen, Contribution.value_date, Contribution.budget_doc_no
        ),
        "claims": select(
            loan_ref.c.bank_loan_ref,
            Claim.state,
            Claim.principal_fen,
            Claim.paid_fen,
            Claim.filed_on,
            Claim.reviewed_on,
            Claim.paid_on,
            Claim.collection_closed_on,
        ).join(loan_ref, loan_ref.c.id == Claim.loan_id),
        "recoveries": select(
            Recovery.bank_ref,
            Recovery.kind,
            Recovery.reported_on,
            Recovery.gross_fen,
            Recovery.fund_share_fen,
        ),
        "ledger": select(
            LedgerTransaction.kind,
            LedgerTransaction.value_date,
            LedgerTransaction.reference_type,
            LedgerAccount.code,
            LedgerEntry.side,
            LedgerEntry.amount_fen,
        )
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id),
        "portfolio_monthly": select(
            Bank.code,
            PortfolioMonthly.industry,
            PortfolioMonthly.grade,
            PortfolioMonthly.month,
            *(PortfolioMonthly.__table__.c[f] for f in portfolio.FIGURES),
        ).join(Bank, Bank.id == PortfolioMonthly.bank_id),
        "discrepancies": select(
            Discrepancy.month_end,
            Discrepancy.bank_loan_ref,
            Discrepancy.kind,
            Discrepancy.reported_outstanding_fen,
            Discrepancy.derived_outstanding_fen,
        ),
        "stress_test_runs": select(
            StressTestRun.name,
            StressTestRun.as_of,
            StressTestRun.inputs,
            StressTestRun.calibration,
            StressTestRun.outputs,
        )
        .order_by(StressTestRun.id)
        .limit(1),  # the demo's own run
        "bank_ratings": select(
            Bank.code,
            BankRating.month,
            BankRating.rating,
            BankRating.score,
            BankRating.driver,
            BankRating.measures,
        ).join(Bank, Bank.id == BankRating.bank_id),
    }
    out = {}
    with Session(engine) as session:
        for name, stmt in queries.items():
            rows = _rows(session, stmt)
            assert rows, name
            out[name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return out


def test_the_same_seed_gives_the_same_data(demo: Demo, tmp_path: Path) -> None:
    """A second database, seeded with the same seed (on SQLite, so also across backends), holds the same
    data as the first."""
    url = f"sqlite:///{tmp_path / 'again.db'}"
    upgrade(url)
    settings = Settings(env="test", database_url=url, secret_key=demo.settings.secret_key, log_json=True)
    engine = make_engine(settings)
    try:
        seed_demo(engine, settings, seed=2021)
        assert digest(engine) == digest(demo.engine)
        # and the same stress test gives the same results on either database
        assert _stress(engine, settings) == _stress(demo.engine, demo.settings)
    finally:
        engine.dispose()


def _stress(engine: Engine, settings: Settings) -> dict[str, Any]:
    with Session(engine) as session:
        body = StressTestCreate(as_of=date(2021, 12, 31), scenarios=3000, seed=2021)
        run = stress.read(stress.run(session, settings, SYSTEM, body, today=date(2022, 1, 10)))
        session.rollback()
    return run.model_dump(include={"inputs", "calibration", "outputs"}, mode="json")


# --- risk ratings and the stress test on the demo --------------------------------------------------------


def test_the_banks_ratings_in_2021(session: Session) -> None:
    """Every month of 2021 is rated as its last status report closes it; the banks are told apart, each
    rating says what drove it, and at least one bank is rated 4 or worse."""
    rows = session.execute(
        select(Bank.code, BankRating.month, BankRating.rating, BankRating.driver)
        .join(Bank, Bank.id == BankRating.bank_id)
        .order_by(BankRating.month, Bank.code)
    ).all()
    months: dict[date, dict[str, int]] = {}
    for code, month, rating, driver in rows:
        months.setdefault(month, {})[code] = rating
        assert driver
    assert sorted(months) == [date(2021, m, 1) for m in range(1, 13)]
    assert all(len(by_bank) == 4 for by_bank in months.values())
    assert max(r for by_bank in months.values() for r in by_bank.values()) >= 4
    assert all(len(set(by_bank.values())) > 1 for by_bank in months.values())  # never all the same
    assert any(len(set(by_bank.values())) == 4 for by_bank in months.values())  # four ratings apart


def test_the_stress_test_on_the_demo(demo: Demo) -> None:
    app = create_app(demo.settings, demo.engine)
    key = next(v for k, v in demo.keys.items() if k.startswith("staff analyst"))
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {key}"}
        r = client.post(
            "/api/v1/fund/stress-tests", json={"as_of": "2021-12-31", "scenarios": 2000}, headers=headers
        )
        assert r.status_code == 201, r.text
        run = r.json()
        exposure = client.get("/api/v1/fund/exposure", params={"as_of": "2021-12-31"}, headers=headers).json()
    out = run["outputs"]
    assert out["covered_outstanding"] == exposure["total"]["covered_outstanding"]
    assert out["available_balance"] == exposure["total"]["available_balance"]
    assert len(out["by_bank"]) == 4
    u = run["calibration"]["pd_by_grade"]["U"]  # most of the demo's loans have no evaluation
    assert u["source"] == "observed"
    assert u["defaulted_loans"] >= 5
    assert run["calibration"]["lgd"]["paid_claims"] >= 3
    assert Decimal("0") < Decimal(out["p_exhaustion"]) < Decimal("1")


def test_ratings_compute_refuses_a_rated_month_and_recomputes_on_purpose(demo: Demo) -> None:
    with Session(demo.engine) as session:
        before = {
            r.bank_id: (r.rating, r.score)
            for r in session.scalars(select(BankRating).where(BankRating.month == date(2021, 6, 1)))
        }
    with cli_env(demo.url):
        r = runner.invoke(cli, ["ratings", "compute", "--month", "2021-06"])
        assert r.exit_code == 1
        assert "rated already" in r.output
        r = runner.invoke(cli, ["ratings", "compute", "--month", "2021-06", "--recompute"])
        assert r.exit_code == 1
        assert "reason" in r.output
        r = runner.invoke(
            cli, ["ratings", "compute", "--month", "2021-06", "--recompute", "--reason", "check"]
        )
        assert r.exit_code == 0, r.output
        assert "4 banks rated again" in r.output
        assert runner.invoke(cli, ["ratings", "compute", "--month", "2021-6"]).exit_code == 1
    with Session(demo.engine) as session:
        after = {
            r.bank_id: (r.rating, r.score)
            for r in session.scalars(select(BankRating).where(BankRating.month == date(2021, 6, 1)))
        }
        audit = session.scalar(select(AuditRecord).where(AuditRecord.action == "ratings.recompute"))
    assert after == before  # a closed month's figures do not move
    assert audit is not None
    assert (audit.actor_name, audit.reason) == ("cli", "check")
