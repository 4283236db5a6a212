"""The aggregates the write path keeps are exactly what a rebuild from the loans gives — also after
backdated events, refused events and fund transitions."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from loanfund.banks import service as bank_service
from loanfund.core.config import Settings
from loanfund.core.errors import LoanfundError
from loanfund.enterprises import service as enterprise_service
from loanfund.enterprises.schemas import EnterpriseCreate
from loanfund.fund.contributions import record_contribution
from loanfund.fund.models import ContributionSource
from loanfund.loans import service as loan_service
from loanfund.loans.state import Event, EventKind, LoanState
from loanfund.portfolio import service as portfolio
from loanfund.rules import loan_rules
from tests.factories import TEST_ACTOR, enterprise_payload

START = date(2021, 3, 1)

steps = st.lists(
    st.tuples(
        st.integers(0, 2),  # which loan
        st.sampled_from([EventKind.disbursement, EventKind.repayment, EventKind.delinquency]),
        st.integers(0, 150),  # day offset
        st.integers(1, 600_000),  # amount in fen
        st.integers(0, 130),  # days past due
    ),
    min_size=1,
    max_size=25,
)


def _check(session: Session, settings_: Settings) -> None:
    maintained = portfolio.snapshot_tables(session)
    nested = session.begin_nested()
    portfolio.rebuild(session, loan_rules(settings_))
    rebuilt = portfolio.snapshot_tables(session)
    nested.rollback()
    assert maintained == rebuilt


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps)
def test_maintained_aggregates_equal_a_rebuild(session: Session, settings: Settings, plan: list) -> None:  # type: ignore[type-arg]
    nested = session.begin_nested()
    try:
        bank = bank_service.create_bank(
            session,
            TEST_ACTOR,
            code="AGG",
            name="agg",
            fund_share=Decimal("0.8"),
            allow_contracts_without_application=True,
        )
        record_contribution(
            session,
            TEST_ACTOR,
            source=ContributionSource.city,
            amount_fen=10_000_000,
            value_date=date(2020, 1, 1),
            budget_doc_no="AGG-DOC",
        )
        ents = [
            enterprise_service.create_enterprise(
                session, TEST_ACTOR, EnterpriseCreate.model_validate(enterprise_payload(industry=ind))
            )
            for ind in ("C", "I")
        ]
        loans = [
            loan_service.register_contract(
                session,
                settings,
                TEST_ACTOR,
                bank,
                bank_loan_ref=f"AGG-{i}",
                credit_code=ents[i % 2].credit_code,
                amount=Decimal("10000.00"),
                annual_rate_pct=Decimal("4"),
                start_date=START,
                maturity_date=START + timedelta(days=300),
            )
            for i in range(3)
        ]
        for n, (which, kind, offset, amount, dpd) in enumerate(plan):
            loan = loans[which]
            day = START + timedelta(days=offset)
            event = Event(
                kind, day, principal_fen=amount if kind is not EventKind.delinquency else 0, days_past_due=dpd
            )
            try:
                loan_service.post_event(session, settings, TEST_ACTOR, loan, event, bank_event_ref=f"E{n}")
            except LoanfundError:
                pass
        npl = [loan for loan in loans if loan.state is LoanState.non_performing]
        if npl:
            loan_service.transition(
                session, TEST_ACTOR, npl[0], LoanState.compensated, "test", date(2021, 9, 1)
            )
            loan_service.transition(
                session, TEST_ACTOR, npl[0], LoanState.written_off, "test", date(2021, 10, 1)
            )
        _check(session, settings)
        stocks = portfolio.stocks_by_bank(session, bank_id=bank.id).get(bank.id, portfolio.Stocks())
        assert stocks.covered_fen == sum(
            loan.outstanding_fen for loan in loans if loan.state in portfolio.COVERED
        )
        assert stocks.npl_fen == sum(
            loan.outstanding_fen for loan in loans if loan.state is LoanState.non_performing
        )
    finally:
        nested.rollback()
