"""The SQL rebuild of the aggregates (used after bulk loads) gives exactly what the Python replay gives,
on a small portfolio made by the benchmark generator: every state, tranches, cures, write-offs."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from decimal import Decimal

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import insert, literal, select
from sqlalchemy.orm import Session

from bench.generate import EVENT_COLUMNS, LOAN_COLUMNS, LoanMaker, Registry, Rules
from loanfund import rules
from loanfund.banks import service as bank_service
from loanfund.core.config import Settings
from loanfund.loans.models import Loan, LoanEvent
from loanfund.portfolio import rebuild
from loanfund.portfolio import service as portfolio
from loanfund.rules import LoanRules, loan_rules
from tests.factories import TEST_ACTOR, make_enterprise

FIRST_ID = 10_000_000  # clear of anything the sequences hand out in the test database


def _load_generated(session: Session, settings: Settings, n: int) -> dict[str, int]:
    banks = [
        bank_service.create_bank(
            session, TEST_ACTOR, code=f"GEN{i}", name=f"gen {i}", fund_share=Decimal("0.8")
        )
        for i in range(3)
    ]
    enterprises = [make_enterprise(session, industry=ind) for ind in "CCIMA" * 4]
    registry = Registry(
        banks=[(b.id, b.code, b.fund_share, w) for b, w in zip(banks, (5, 3, 2), strict=True)],
        enterprises=[(e.id, e.industry) for e in enterprises],
    )
    maker = LoanMaker(
        random.Random(7), registry, Rules.load(session, settings), date(2026, 11, 25), datetime.now(UTC)
    )
    loans, events = [], []
    event_id = FIRST_ID
    for loan_id in range(FIRST_ID, FIRST_ID + n):
        loan, rows = maker.make(loan_id, event_id)
        loans.append(dict(zip(LOAN_COLUMNS, loan, strict=True)))
        events.extend(dict(zip(EVENT_COLUMNS, row, strict=True)) for row in rows)
        event_id += len(rows)
    session.execute(insert(Loan), loans)
    session.execute(insert(LoanEvent), events)
    return dict(maker.stats.by_state)


def test_sql_rebuild_equals_python_rebuild(session: Session, settings: Settings) -> None:
    by_state = _load_generated(session, settings, 600)
    assert set(by_state) == {
        "approved",
        "active",
        "overdue",
        "non_performing",
        "settled",
        "compensated",
        "written_off",
    }
    portfolio.rebuild(session, loan_rules(settings))
    replayed = portfolio.snapshot_tables(session)
    rebuild.rebuild_in_sql(session, loan_rules(settings))
    in_sql = portfolio.snapshot_tables(session)
    assert all(replayed.values())  # every table has rows
    assert in_sql == replayed


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(days_past_due=st.integers(-5, 400), npl_days=st.integers(1, 200))
def test_the_sql_standing_is_the_rule_s(session: Session, days_past_due: int, npl_days: int) -> None:
    """The rebuild classifies a delinquency report as `rules.standing` does (it restates it in SQL)."""
    lr = LoanRules(npl_days=npl_days)
    in_sql = session.scalar(select(rebuild.standing_sql(literal(days_past_due), lr)))
    assert in_sql == rebuild.STANDING_CODES[rules.standing(days_past_due, npl_days)]
