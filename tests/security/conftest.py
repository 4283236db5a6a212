"""A small world every security test can point at: two banks, one key per staff role, and one of each
object bank A owns (an enterprise's application routed to it, a loan with events, a status report).

Built through the services, inside the test's rolled-back transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI, routing
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from loanfund.app import create_app
from loanfund.banks import service as bank_service
from loanfund.banks.models import BankStatus
from loanfund.claims import service as claim_service
from loanfund.core.clock import business_today
from loanfund.core.config import Settings
from loanfund.core.ratelimit import RateLimiter
from loanfund.fund.models import LedgerTransaction
from loanfund.loans import service as loan_service
from loanfund.loans.state import Event, EventKind
from loanfund.risk import stress
from loanfund.risk.schemas import StressTestCreate
from loanfund.staff import service as staff_service
from loanfund.staff.models import Role
from loanfund.status_reports import service as report_service
from loanfund.status_reports.schemas import StatusLine
from loanfund.webhooks import outbox
from loanfund.webhooks import service as webhook_service
from loanfund.webhooks.schemas import EndpointCreate
from tests import factories
from tests.factories import TEST_ACTOR, Caller

LOAN_START = date(2021, 3, 1)
REPORT_MONTH_END = date(2021, 6, 30)
AFTER_REPORT = date(2021, 7, 15)  # events after the closed month are still accepted


@dataclass
class World:
    bank_a: Caller
    bank_b: Caller
    analyst: Caller
    officer: Caller
    approver: Caller
    admin: Caller
    credit_code: str  # a registered tech enterprise
    application_no: str  # routed to bank A, pending the bank's decision
    status_token: str  # the applicant's token for `application_no`
    loan_id: int  # bank A's, disbursed
    loan_ref: str
    report_id: int  # bank A's status report for REPORT_MONTH_END
    spare_staff_id: int  # an active analyst the admin routes may act on
    spare_key_id: int  # a key of that analyst
    inactive_staff_id: int  # a deactivated analyst
    suspended_bank_id: int  # bank C, suspended, without keys
    npl_loan_id: int  # bank A's, non-performing, no claim yet
    claim_id: int  # bank A's, submitted
    approved_claim_id: int  # bank A's, approved by the officer, to be paid
    paid_claim_id: int  # bank A's, paid, with a recovery the bank still owes
    closable_claim_id: int  # bank A's, paid, nothing owed
    transaction_id: int  # a ledger transaction (a contribution)
    reversible_transaction_id: int  # a small contribution that may be reversed
    today: date  # the business date the world was built on (its claims were paid that day)
    webhook_endpoint_id: int  # bank A's
    webhook_delivery_id: int  # a ping queued to it
    stress_test_id: int  # a stress test run

    def path_params(self) -> dict[str, Any]:
        """Path parameter name → the world's record it names (bank A's where a bank owns it)."""
        return {
            "bank_id": self.bank_a.id,
            "loan_id": self.loan_id,
            "report_id": self.report_id,
            "staff_id": self.spare_staff_id,
            "key_id": self.spare_key_id,
            "application_no": self.application_no,
            "credit_code": self.credit_code,
            "bank_loan_ref": self.loan_ref,
            "claim_id": self.claim_id,
            "transaction_id": self.transaction_id,
            "endpoint_id": self.webhook_endpoint_id,
            "delivery_id": self.webhook_delivery_id,
            "run_id": self.stress_test_id,
        }

    def caller(self, kind: str) -> Caller | None:
        """The caller of a kind: anonymous, bank_own (A), bank_other (B) or a staff role."""
        return {
            "anonymous": None,
            "bank_own": self.bank_a,
            "bank_other": self.bank_b,
            "analyst": self.analyst,
            "officer": self.officer,
            "approver": self.approver,
            "admin": self.admin,
        }[kind]

    def headers(self, kind: str) -> dict[str, str]:
        if kind == "enterprise":
            return {"Authorization": f"Bearer {self.status_token}"}
        c = self.caller(kind)
        return dict(c.headers) if c is not None else {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The figures of the schema-fuzzing run, if it ran."""
    from tests.security.test_fuzz import STATS

    if STATS.statuses:
        terminalreporter.write_line(STATS.summary())


NOT_ROUTES = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")


def api_routes(app: FastAPI) -> dict[tuple[str, str], Any]:
    """(METHOD, path template) → the route, for every API route of the app, however routers are nested.
    Pages (routes left out of the OpenAPI document) are not API routes.

    Recent FastAPI keeps included routers as lazy `_IncludedRouter` entries in `app.routes`;
    `iter_route_contexts` flattens them into routes with their full path, tags and dependencies.
    """
    iterate = getattr(routing, "iter_route_contexts", None)
    entries = list(iterate(app.routes)) if iterate is not None else list(app.routes)
    out: dict[tuple[str, str], Any] = {}
    for entry in entries:
        original = getattr(entry, "original_route", entry)
        if not isinstance(original, APIRoute) or entry.path in NOT_ROUTES:
            continue
        if not original.include_in_schema:  # pages for people (web/): tested in tests/web
            continue
        for method in sorted(entry.methods):
            out[(method, entry.path)] = entry
    return out


def dependency_calls(dependant: Any) -> set[Any]:
    """Every callable a route depends on, however deep."""
    found = {dependant.call}
    for sub in dependant.dependencies:
        found |= dependency_calls(sub)
    return found


@pytest.fixture
def make_client(
    settings: Settings, engine: Engine, session_maker: sessionmaker[Session]
) -> Iterator[Callable[..., TestClient]]:
    """A client of an app built with some settings changed, its sessions joined to the test's."""
    opened: list[TestClient] = []

    def make(**changes: Any) -> TestClient:
        app = create_app(settings.model_copy(update=changes), engine)
        app.state.sessionmaker = session_maker
        c = TestClient(app)
        opened.append(c.__enter__())
        return c

    yield make
    for c in opened:
        c.__exit__(None, None, None)


@pytest.fixture
def fresh_limits(app: FastAPI) -> Iterator[RateLimiter]:
    limiter: RateLimiter = app.state.rate_limiter
    limiter.reset()
    yield limiter
    limiter.reset()


@pytest.fixture
def world(session: Session, settings: Settings, bank_a: Caller, bank_b: Caller) -> World:
    staff = {role: factories.staff_caller(session, settings, role) for role in Role}
    factories.contribute(session, 100_000_000)
    factories.contribute(session, 1_000)
    ent = factories.make_enterprise(session)
    application, token = factories.make_application(
        session, settings, ent.credit_code, bank_a.name, business_today(settings)
    )
    bank = bank_service.get_bank(session, bank_a.id)
    loan_ref = "SEC-LOAN-1"
    loan = loan_service.register_contract(
        session,
        settings,
        TEST_ACTOR,
        bank,
        bank_loan_ref=loan_ref,
        credit_code=ent.credit_code,
        amount=Decimal("3000000.00"),
        annual_rate_pct=Decimal("4.35"),
        start_date=LOAN_START,
        maturity_date=LOAN_START + timedelta(days=364),
    )
    loan_service.post_event(
        session,
        settings,
        TEST_ACTOR,
        loan,
        Event(EventKind.disbursement, LOAN_START, principal_fen=100_000_000),
        bank_event_ref="SEC-D1",
    )
    report = report_service.submit(
        session,
        settings,
        TEST_ACTOR,
        bank,
        REPORT_MONTH_END,
        [StatusLine(bank_loan_ref=loan_ref, outstanding_principal=Decimal("1000000.00"), days_past_due=0)],
    )
    spare = staff_service.create_staff(session, TEST_ACTOR, name="spare-analyst", role=Role.analyst)
    spare_key = staff_service.issue_key(session, settings, TEST_ACTOR, staff=spare)
    inactive = staff_service.create_staff(session, TEST_ACTOR, name="gone-analyst", role=Role.analyst)
    staff_service.set_staff_active(session, TEST_ACTOR, inactive, False)
    bank_c = bank_service.create_bank(
        session, TEST_ACTOR, code="BANK_C", name="Bank BANK_C", fund_share=Decimal("0.80")
    )
    bank_service.set_status(session, TEST_ACTOR, bank_c, BankStatus.suspended, "suspended for the tests")
    today = business_today(settings)
    start = today - timedelta(days=200)
    npl = []
    for i in range(5):  # small non-performing loans: bank A's NPL ratio stays under its breaker
        n = loan_service.register_contract(
            session,
            settings,
            TEST_ACTOR,
            bank,
            bank_loan_ref=f"SEC-NPL-{i}",
            credit_code=ent.credit_code,
            amount=Decimal("1000.00"),
            annual_rate_pct=Decimal("4.00"),
            start_date=start,
            maturity_date=start + timedelta(days=300),
        )
        loan_service.post_event(
            session,
            settings,
            TEST_ACTOR,
            n,
            Event(EventKind.disbursement, start, principal_fen=100_000),
            bank_event_ref=f"SEC-NPL-{i}-d",
        )
        loan_service.post_event(
            session,
            settings,
            TEST_ACTOR,
            n,
            Event(EventKind.delinquency, today, days_past_due=95),
            bank_event_ref=f"SEC-NPL-{i}-q",
        )
        npl.append(n)
    claims = [
        claim_service.file_claim(session, settings, TEST_ACTOR, bank, n, principal_fen=100_000, day=today)
        for n in npl[1:]
    ]
    officer_id, approver_id = staff[Role.officer].id, staff[Role.approver].id
    for c in claims[1:]:
        claim_service.approve(
            session, settings, TEST_ACTOR, c, reviewer_id=officer_id, amount_fen=None, reason=None, day=today
        )
    for c in claims[2:]:
        claim_service.pay(session, settings, TEST_ACTOR, c, payer_id=approver_id, day=today)
    claim_service.report_recovery(
        session,
        TEST_ACTOR,
        claims[2],
        bank_ref="SEC-REC-1",
        gross_fen=50_000,
        costs_fen=0,
        day=today,
        today=today,
    )
    txns = list(session.scalars(select(LedgerTransaction.id).order_by(LedgerTransaction.id)))
    hook, _ = webhook_service.create_endpoint(
        session,
        settings,
        TEST_ACTOR,
        bank_a.id,
        EndpointCreate.model_validate({"url": "https://hooks.bank-a.example.cn/loanfund"}),
    )
    [ping] = outbox.queue(session, [outbox.Outgoing(bank_a.id, outbox.PING, {})], endpoint_id=hook.id)
    run = stress.run(session, settings, TEST_ACTOR, StressTestCreate(scenarios=100), today=today)
    session.commit()
    return World(
        bank_a=bank_a,
        bank_b=bank_b,
        analyst=staff[Role.analyst],
        officer=staff[Role.officer],
        approver=staff[Role.approver],
        admin=staff[Role.admin],
        credit_code=ent.credit_code,
        application_no=application.application_no,
        status_token=token,
        loan_id=loan.id,
        loan_ref=loan_ref,
        report_id=report.id,
        spare_staff_id=spare.id,
        spare_key_id=spare_key.key.id,
        inactive_staff_id=inactive.id,
        suspended_bank_id=bank_c.id,
        npl_loan_id=npl[0].id,
        claim_id=claims[0].id,
        approved_claim_id=claims[1].id,
        paid_claim_id=claims[2].id,
        closable_claim_id=claims[3].id,
        transaction_id=txns[0],
        reversible_transaction_id=txns[1],
        today=today,
        webhook_endpoint_id=hook.id,
        webhook_delivery_id=ping,
        stress_test_id=run.id,
    )
