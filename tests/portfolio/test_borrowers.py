"""Enterprises served per year count each enterprise once, however many disbursements it receives."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.portfolio import service as portfolio
from loanfund.portfolio.models import YearCounter
from tests.factories import make_enterprise
from tests.fund.conftest import make_bank


def test_served_counts_an_enterprise_once_a_year(session: Session) -> None:
    bank = make_bank(session)
    ent = make_enterprise(session).id
    for day in (date(2021, 1, 5), date(2021, 3, 1), date(2021, 12, 31), date(2022, 1, 1)):
        portfolio.note_borrowing(session, ent, bank, day)
    counters = {
        (r.bank_id, r.year): (r.served, r.first_time)
        for r in session.scalars(select(YearCounter).where(YearCounter.bank_id.in_([0, bank])))
    }
    assert counters == {(0, 2021): (1, 1), (0, 2022): (1, 0), (bank, 2021): (1, 1), (bank, 2022): (1, 0)}
