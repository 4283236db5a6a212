"""Replay the demo plan through the services, in date order, as the callers of the API would: banks
register loans and report events, claims and recoveries; the officer records contributions, regrades and
reviews claims; an approver pays them; enterprises apply. Every rule of live data applies (rate cap,
term, credit line, leverage cap, breakers, filing window, maker-checker), so a plan that broke one would
fail here rather than produce a database that breaks them.

One transaction per calendar month, with one set of `Lookups` caches; the coverage check starts afresh
each business day, so that it sees the fund and the book as they stand that day. Each bank's events of a
day count as one batch: its breaker is evaluated at the end of the day, as the batch endpoint does after
a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from itertools import groupby
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from loanfund.applications import repository as application_repo
from loanfund.applications import service as application_service
from loanfund.applications.models import Application
from loanfund.applications.schemas import ApplicationCreate, Contact, IndicatorsIn
from loanfund.audit.service import Actor
from loanfund.banks.models import Bank
from loanfund.claims import repository as claim_repository
from loanfund.claims import service as claims
from loanfund.claims.models import Claim
from loanfund.core.config import Settings
from loanfund.core.money import fen_to_yuan
from loanfund.core.session import transaction
from loanfund.demo import plan as p
from loanfund.enterprises import repository as enterprise_repo
from loanfund.enterprises import service as enterprise_service
from loanfund.fund import breakers
from loanfund.fund.contributions import record_contribution
from loanfund.fund.models import ContributionSource
from loanfund.loans import service as loans
from loanfund.loans import writes
from loanfund.loans.models import Loan
from loanfund.loans.state import OPEN_FOR_BANK_EVENTS, Event, EventKind
from loanfund.status_reports import repository as status_report_repository
from loanfund.status_reports import service as status_reports
from loanfund.status_reports.schemas import StatusLine

EARLY_DEFAULT_NOTE = "早期违约复核：核对放款资料与贷后检查记录，未见骗贷或违规放款，同意代偿"
FILED_AT = time(17, 30)  # when the banks file their month-end status reports (local time)


class DemoPlanBroken(RuntimeError):
    """The plan led somewhere the programme's rules do not allow (a bug in the plan, not in the data)."""


@dataclass
class Cast:
    """Who acts in the history: the banks by code, the officer who reviews, the approver who pays."""

    banks: dict[str, int]
    officer: tuple[int, str]
    approver: tuple[int, str]


@dataclass
class _Memory:
    """What the replay remembers across transactions: ids by the plan's names."""

    loans: dict[str, int] = field(default_factory=dict)
    claims: dict[str, int] = field(default_factory=dict)
    applications: dict[str, str] = field(default_factory=dict)


class _Month:
    """One transaction of the replay: the session, the `Lookups` caches, and the rows in use (held here
    so that the session's identity map keeps them between actions)."""

    def __init__(self, session: Session, settings: Settings, cast: Cast, memory: _Memory) -> None:
        self.session = session
        self.settings = settings
        self.cast = cast
        self.memory = memory
        self.lookups = writes.Lookups(session, settings)
        self.banks = {bank.id: bank for bank in session.scalars(select(Bank))}
        # the loans that may take events this month, in one query rather than one each
        self.loans: dict[str, Loan] = {
            loan.bank_loan_ref: loan
            for loan in session.scalars(select(Loan).where(Loan.state.in_(list(OPEN_FOR_BANK_EVENTS))))
        }
        self.officer = Actor(kind="staff", id=cast.officer[0], name=f"staff:{cast.officer[1]}")
        self.approver = Actor(kind="staff", id=cast.approver[0], name=f"staff:{cast.approver[1]}")

    def start_day(self) -> None:
        """Keep the transaction's caches of dated tables, registry and closed months; start the coverage
        check afresh, so that it sees the fund and the book as they stand on the new day."""
        self.lookups = self.lookups.new_day()

    def end_day(self) -> None:
        """Each bank's events of the day count as one batch, after which its breaker is evaluated (as the
        batch endpoint does). No bank may end a day suspended."""
        for bank_id in sorted(self.lookups.touched_banks):
            row = breakers.evaluate_bank(self.session, self.settings, self.bank_actor(bank_id), bank_id)
            self.check(bank_id, row.state is breakers.BreakerState.suspended)
        self.lookups.touched_banks.clear()

    def check(self, bank_id: int, suspended: bool | None = None) -> None:
        if suspended is None:
            suspended = breakers.bank_suspended(self.session, bank_id)
        if suspended:
            raise DemoPlanBroken(
                f"the NPL ratio of bank {self.banks[bank_id].code} reached the suspension line"
            )

    # --- who ---------------------------------------------------------------------------------------

    def bank(self, code: str) -> Bank:
        return self.banks[self.cast.banks[code]]

    def bank_actor(self, bank_id: int) -> Actor:
        return Actor(kind="bank", id=bank_id, name=f"bank:{self.banks[bank_id].code}")

    def loan(self, ref: str) -> Loan:
        if ref not in self.loans:
            loan = self.session.get(Loan, self.memory.loans[ref])
            assert loan is not None
            self.loans[ref] = loan
        return self.loans[ref]

    def claim(self, loan_ref: str) -> Claim:
        claim = self.session.get(Claim, self.memory.claims[loan_ref])
        assert claim is not None
        return claim

    def application(self, key: str) -> Application:
        app = application_repo.by_no(self.session, self.memory.applications[key])
        assert app is not None
        return app

    # --- what --------------------------------------------------------------------------------------

    def do(self, action: p.Action) -> None:
        if isinstance(action, p.Contribute):
            record_contribution(
                self.session,
                self.officer,
                source=ContributionSource(action.source),
                amount_fen=action.amount_fen,
                value_date=action.day,
                budget_doc_no=action.doc_no,
                today=action.day,
            )
        elif isinstance(action, p.Apply):
            self.apply(action)
        elif isinstance(action, p.Override):
            application_service.override_evaluation(
                self.session,
                self.officer,
                self.application(action.key),
                grade=action.grade,
                credit_line=None,
                reason=action.reason,
            )
        elif isinstance(action, p.Decide):
            self.decide(action)
        elif isinstance(action, p.Lend):
            self.lend(action.loan)
        elif isinstance(action, p.Repay):
            event = Event(EventKind.repayment, action.day, action.principal_fen, action.interest_fen)
            self.post(action.loan_ref, event, action.event_ref)
        elif isinstance(action, p.Delinquent):
            event = Event(EventKind.delinquency, action.day, days_past_due=action.days_past_due)
            self.post(action.loan_ref, event, action.event_ref)
        elif isinstance(action, p.ClaimStep):
            self.claim_step(action)
        else:
            self.status_report(action)

    def apply(self, action: p.Apply) -> None:
        a = action.application
        ind = a.indicators
        body = ApplicationCreate(
            credit_code=a.credit_code,
            contact=Contact(name=a.contact[0], phone=a.contact[1]),
            requested_amount=fen_to_yuan(a.requested_fen),
            term_months=a.term_months,
            bank_code=a.bank,
            indicators=IndicatorsIn(
                invention_patents=ind.invention_patents,
                utility_model_patents=ind.utility_model_patents,
                software_copyrights=ind.software_copyrights,
                rd_spending=fen_to_yuan(ind.rd_spending_fen),
                revenue=fen_to_yuan(ind.revenue_fen),
                total_staff=ind.total_staff,
                rd_staff=ind.rd_staff,
                senior_talent=ind.senior_talent,
                high_tech_certificate=ind.high_tech_certificate,
            ),
        )
        app, _token = application_service.submit_application(
            self.session, self.settings, body, today=a.submitted
        )
        if app.computed_grade != a.grade:
            raise DemoPlanBroken(f"application {a.key}: graded {app.computed_grade}, planned {a.grade}")
        self.memory.applications[a.key] = app.application_no

    def decide(self, action: p.Decide) -> None:
        a = action.application
        app = self.application(a.key)
        actor = self.bank_actor(self.bank(a.bank).id)
        if a.approve is not None:
            amount, term, rate = a.approve
            application_service.approve(
                self.session,
                self.settings,
                actor,
                app,
                amount=fen_to_yuan(amount),
                term_months=term,
                annual_rate_pct=rate,
                today=action.day,
            )
        else:
            assert a.reject is not None
            application_service.reject(self.session, actor, app, reason=a.reject, today=action.day)

    def lend(self, plan: p.LoanPlan) -> None:
        bank = self.bank(plan.bank)
        actor = self.bank_actor(bank.id)
        if not plan.application:
            self.grade_on_record(plan)
        loan = loans.register_contract(
            self.session,
            self.settings,
            actor,
            bank,
            bank_loan_ref=plan.ref,
            credit_code=plan.credit_code,
            amount=fen_to_yuan(plan.amount_fen),
            annual_rate_pct=plan.rate_pct,
            start_date=plan.start,
            maturity_date=plan.maturity,
            application_no=self.memory.applications[plan.ref] if plan.application else None,
            lookups=self.lookups,
        )
        self.memory.loans[plan.ref] = loan.id
        self.loans[plan.ref] = loan
        event = Event(EventKind.disbursement, plan.start, plan.amount_fen)
        self.post(plan.ref, event, f"{plan.ref}/D")

    def grade_on_record(self, plan: p.LoanPlan) -> None:
        """A historical contract is checked against the enterprise's grade on record: the bureau records
        the grade of its assessment (the lowest whose credit line covers the loan) where the registry
        has none, or one too low."""
        ent = enterprise_repo.by_code(self.session, plan.credit_code)
        assert ent is not None
        lines = self.lookups.tables.credit_line_table_on(plan.start)
        if ent.grade is not None and lines[ent.grade] >= plan.amount_fen:
            return
        grade = min((g for g in lines if lines[g] >= plan.amount_fen), key=lambda g: lines[g])
        enterprise_service.set_grade(
            self.session, self.officer, ent, grade, "graded by the bureau's assessment"
        )
        self.lookups.enterprises.pop(plan.credit_code, None)

    def post(self, loan_ref: str, event: Event, event_ref: str) -> None:
        loan = self.loan(loan_ref)
        actor = self.bank_actor(loan.bank_id)
        loans.post_event(
            self.session, self.settings, actor, loan, event, bank_event_ref=event_ref, lookups=self.lookups
        )

    def claim_step(self, action: p.ClaimStep) -> None:
        s, settings, day = self.session, self.settings, action.day
        loan = self.loan(action.loan_ref)
        bank = self.banks[loan.bank_id]
        actor = self.bank_actor(bank.id)
        if action.step == "file":
            claim = claims.file_claim(
                s, settings, actor, bank, loan, principal_fen=loan.outstanding_fen, day=day
            )
            self.memory.claims[action.loan_ref] = claim.id
        elif action.step == "approve":
            claim = self.claim(action.loan_ref)
            claims.approve(
                s,
                settings,
                self.officer,
                claim,
                reviewer_id=self.cast.officer[0],
                amount_fen=None,
                reason=None,
                day=day,
                review_note=EARLY_DEFAULT_NOTE if claim.early_default else None,
            )
        elif action.step == "pay":
            claims.pay(
                s,
                settings,
                self.approver,
                self.claim(action.loan_ref),
                payer_id=self.cast.approver[0],
                day=day,
            )
        elif action.step == "recover":
            claims.report_recovery(
                s,
                actor,
                self.claim(action.loan_ref),
                bank_ref=action.ref,
                gross_fen=action.gross_fen,
                costs_fen=action.costs_fen,
                day=day,
                today=day,
            )
        elif action.step == "remit":
            claim = self.claim(action.loan_ref)
            owed = claim_repository.receivable_fen(s, claim.id)
            claims.remit(s, actor, claim, bank_ref=action.ref, amount_fen=owed, day=day, today=day)
        else:
            claims.close_collection(s, settings, actor, self.claim(action.loan_ref), day=day, today=day)
        self.check(bank.id)

    def status_report(self, action: p.StatusReport) -> None:
        """The bank's month-end report: every open loan with its balance and days past due, as its own
        books have them — with the quirk, if any, that gives bureau staff something to follow up."""
        bank = self.bank(action.bank)
        derived = status_report_repository.outstanding_as_of(self.session, bank.id, action.day)
        rows = self.session.scalars(
            select(Loan)
            .where(Loan.bank_id == bank.id, Loan.state.in_(list(OPEN_FOR_BANK_EVENTS)))
            .order_by(Loan.bank_loan_ref)
        )
        lines = [
            StatusLine(
                bank_loan_ref=loan.bank_loan_ref,
                outstanding_principal=fen_to_yuan(derived.get(loan.id, 0)),
                days_past_due=loan.days_past_due,
            )
            for loan in rows
            if derived.get(loan.id, 0) > 0
        ]
        if action.quirk == "balance_mismatch" and lines:
            first = lines[0]
            lines[0] = first.model_copy(
                update={"outstanding_principal": first.outstanding_principal + 10_000}
            )
        elif action.quirk == "missing_from_report" and lines:
            lines.pop()
        elif action.quirk == "unknown_loan":
            prefix = p.BANK_PREFIX[bank.code]
            lines.append(
                StatusLine(
                    bank_loan_ref=f"{prefix}-{action.day.year}-9001",
                    outstanding_principal=fen_to_yuan(50 * p.WAN),
                    days_past_due=0,
                )
            )
        report = status_reports.submit(
            self.session, self.settings, self.bank_actor(bank.id), bank, action.day, lines
        )
        # filed on the plan's day, at the end of the business day, not when the demo is seeded
        report.submitted_at = datetime.combine(action.day, FILED_AT, ZoneInfo(self.settings.timezone))
        self.lookups.closed.pop(bank.id, None)  # the report closed the month
        self.check(bank.id)


def replay(engine: Engine, settings: Settings, plan: p.Plan, cast: Cast) -> None:
    memory = _Memory()
    for _, in_month in groupby(plan.actions, key=lambda a: (a.day.year, a.day.month)):
        with transaction(engine) as session:
            month = _Month(session, settings, cast, memory)
            for day, actions in groupby(in_month, key=lambda a: a.day):
                month.start_day()
                for action in actions:
                    try:
                        month.do(action)
                    except Exception as exc:
                        raise DemoPlanBroken(
                            f"{type(action).__name__} on {day} was refused ({exc}); the months before "
                            "it are in the database: start again from an empty one"
                        ) from exc
                month.end_day()
