"""Constructed loan histories for the calibration and rating tests.

`History` writes loan rows and their reports straight into the tables (with counts the tests choose),
for the read side — calibration, the book at a date — to be checked against numbers known in advance.
Where the write path's own rules matter (ratings, the stress test through the API), the tests use the
services instead.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from loanfund.claims.models import Claim, ClaimState, Recovery, RecoveryKind
from loanfund.loans.models import Loan, LoanEvent
from loanfund.loans.state import EventKind, LoanState
from tests import factories

_refs = itertools.count(1)


@dataclass
class History:
    session: Session
    bank_id: int
    enterprise_id: int

    def loan(
        self,
        grade: str,
        *,
        start: date,
        maturity: date,
        npl_on: date | None = None,
        dpd_on: tuple[date, int] | None = None,
        amount_fen: int = 100_000_000,
        state: LoanState = LoanState.settled,
    ) -> Loan:
        """A loan first disbursed on `start`; `npl_on`: reported 95 days past due that day (so
        non-performing since five days before); `dpd_on`: some other delinquency report."""
        n = next(_refs)
        loan = Loan(
            bank_id=self.bank_id,
            enterprise_id=self.enterprise_id,
            bank_loan_ref=f"HIST-{n}",
            industry="C",
            grade=grade,
            contract_amount_fen=amount_fen,
            annual_rate_pct=Decimal("4.00"),
            start_date=start,
            maturity_date=maturity,
            state=state,
            disbursed_fen=amount_fen,
            principal_repaid_fen=amount_fen if state is LoanState.settled else 0,
            outstanding_fen=0 if state is LoanState.settled else amount_fen,
            first_disbursed_on=start,
            last_event_date=start,
        )
        self.session.add(loan)
        self.session.flush()
        reports = [(npl_on, 95)] if npl_on else []
        if dpd_on:
            reports.append(dpd_on)
        for i, (day, dpd) in enumerate(reports):
            self.session.add(
                LoanEvent(
                    loan_id=loan.id,
                    bank_id=self.bank_id,
                    bank_event_ref=f"HIST-{n}-Q{i}",
                    kind=EventKind.delinquency,
                    event_date=day,
                    days_past_due=dpd,
                )
            )
        self.session.flush()
        return loan

    def paid_claim(
        self, loan: Loan, *, paid_fen: int, paid_on: date, recovered: list[tuple[date, int]]
    ) -> None:
        claim = Claim(
            bank_id=self.bank_id,
            loan_id=loan.id,
            state=ClaimState.paid,
            principal_fen=paid_fen * 5 // 4,
            fund_share=Decimal("0.80"),
            claimed_fen=paid_fen,
            filed_on=paid_on - timedelta(days=20),
            approved_fen=paid_fen,
            paid_fen=paid_fen,
            paid_on=paid_on,
        )
        self.session.add(claim)
        self.session.flush()
        for i, (day, share) in enumerate(recovered):
            self.session.add(
                Recovery(
                    claim_id=claim.id,
                    bank_id=self.bank_id,
                    bank_ref=f"REC-{claim.id}-{i}",
                    kind=RecoveryKind.recovery,
                    reported_on=day,
                    gross_fen=share * 5 // 4,
                    fund_share_fen=share,
                )
            )
        self.session.flush()


@pytest.fixture
def history(session: Session, bank_a: factories.Caller) -> History:
    enterprise = factories.make_enterprise(session)
    return History(session, bank_a.id, enterprise.id)
