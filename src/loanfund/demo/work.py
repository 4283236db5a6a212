"""Work left in the console's queues, as a newcomer's first look should find it: a short final step after
the replayed history (which ends on 31 December 2021), dated in January 2022, so that no figure of 2021
changes.

- a bank reports one more overdue loan past 90 days: it becomes non-performing;
- the banks claim on their non-performing loans still within the filing window: one claim is reviewed
  and approved by an approver (so another approver must pay it: maker-checker), the others wait for
  review;
- the bureau suspends one bank (its monthly reports are late), which an officer may reinstate;
- the applications waiting for a bank's decision or an officer's re-grade come from the history;
- the analyst runs the baseline stress test of the fund as it stood at the end of 2021 (seeded: the same
  figures on every machine), so that the console's risk page has a run to show.

Demo staff also get console sign-ins (development only; `loanfund howto` prints them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from loanfund.audit.service import Actor
from loanfund.banks import service as bank_service
from loanfund.banks.models import Bank, BankStatus
from loanfund.claims import service as claims
from loanfund.claims.models import Claim
from loanfund.core.config import Settings
from loanfund.core.session import transaction
from loanfund.demo.history import EARLY_DEFAULT_NOTE
from loanfund.fund import breakers
from loanfund.loans import service as loans
from loanfund.loans.models import Loan
from loanfund.loans.state import Event, EventKind, LoanState
from loanfund.risk import stress
from loanfund.risk.schemas import Preset
from loanfund.staff import signin
from loanfund.staff.models import Staff

DAY = date(2022, 1, 20)
STRESS_AS_OF = date(2021, 12, 31)
SUSPENDED_BANK = "CQTGB_QJ"
SUSPENSION_REASON = "2021年12月月报逾期未报送，暂停新增贷款 / December 2021 status report overdue"
# development only: `loanfund demo` refuses to run in production
DEMO_PASSWORD = "loanfund-demo-2021"
DEMO_LOGINS = {
    "王分析": "wang.fx",
    "李经办": "li.jb",
    "张审批": "zhang.sp",
    "赵复核": "zhao.fh",
    "陈管理": "chen.gl",
}


@dataclass(frozen=True)
class SignIn:
    login: str
    name: str
    role: str


def sign_ins(session: Session) -> list[SignIn]:
    rows = session.scalars(
        select(Staff).where(Staff.login.in_(list(DEMO_LOGINS.values()))).order_by(Staff.id)
    )
    return [SignIn(s.login or "", s.name, s.role.value) for s in rows]


def _bank_actor(bank: Bank) -> Actor:
    return Actor(kind="bank", id=bank.id, name=f"bank:{bank.code}")


def _newly_non_performing(session: Session, settings: Settings, banks: dict[int, Bank]) -> list[Loan]:
    """The most overdue loan that is 90 days past due by DAY, reported so by its bank."""
    overdue = session.scalars(
        select(Loan).where(Loan.state == LoanState.overdue).order_by(Loan.days_past_due.desc(), Loan.id)
    )
    for loan in overdue:
        assert loan.last_event_date is not None
        dpd = loan.days_past_due + (DAY - loan.last_event_date).days
        if dpd < settings.npl_days:
            return []
        bank = banks[loan.bank_id]
        event = Event(EventKind.delinquency, DAY, days_past_due=dpd)
        loans.post_event(
            session, settings, _bank_actor(bank), loan, event, bank_event_ref=f"{loan.bank_loan_ref}/Q2201"
        )
        breakers.evaluate_bank(session, settings, _bank_actor(bank), bank.id)
        return [loan]
    return []


def leave_work(
    engine: Engine, settings: Settings, approver: tuple[int, str], analyst: tuple[int, str]
) -> None:
    with transaction(engine) as session:
        banks = {b.id: b for b in session.scalars(select(Bank))}
        claimed = select(Claim.loan_id)
        window = timedelta(days=settings.claim_window_days)
        open_npl = [
            loan
            for loan in session.scalars(
                select(Loan)
                .where(Loan.state == LoanState.non_performing, Loan.id.not_in(claimed))
                .order_by(Loan.npl_since, Loan.id)
            )
            if loan.npl_since is not None and loan.npl_since + window >= DAY
        ]
        to_claim = open_npl + _newly_non_performing(session, settings, banks)
        filed = [
            claims.file_claim(
                session,
                settings,
                _bank_actor(banks[loan.bank_id]),
                banks[loan.bank_id],
                loan,
                principal_fen=loan.outstanding_fen,
                day=DAY,
            )
            for loan in to_claim
        ]
        if filed:  # the first is reviewed by an approver: another approver must pay it
            staff_id, name = approver
            claims.approve(
                session,
                settings,
                Actor(kind="staff", id=staff_id, name=f"staff:{name}"),
                filed[0],
                reviewer_id=staff_id,
                amount_fen=None,
                reason=None,
                day=DAY,
                review_note=EARLY_DEFAULT_NOTE if filed[0].early_default else None,
            )
        bureau = Actor(kind="system", id=None, name="demo")
        suspended = next((b for b in banks.values() if b.code == SUSPENDED_BANK), None)
        if suspended is not None and suspended.status is BankStatus.active:
            bank_service.set_status(session, bureau, suspended, BankStatus.suspended, SUSPENSION_REASON)
        for staff in session.scalars(select(Staff).where(Staff.name.in_(list(DEMO_LOGINS)))):
            signin.set_login(session, bureau, staff, DEMO_LOGINS[staff.name])
            signin.set_password(session, settings, bureau, staff, DEMO_PASSWORD)
        staff_id, name = analyst
        stress.run_preset(
            session,
            settings,
            Actor(kind="staff", id=staff_id, name=f"staff:{name}"),
            Preset.baseline,
            today=DAY,
            as_of=STRESS_AS_OF,
        )
