"""The demo plan, checked without a database for many seeds: the figures are exact and the history
keeps the leverage cap and the banks' NPL ratios with room to spare, whatever the seed."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pytest

from loanfund.core.config import Settings
from loanfund.demo import plan
from loanfund.demo.seed import enterprise_rows
from loanfund.rules import add_months

LPR = [
    (date(2015, 10, 24), Decimal("4.35")),
    (date(2019, 8, 20), Decimal("4.25")),
    (date(2019, 9, 20), Decimal("4.20")),
    (date(2019, 11, 20), Decimal("4.15")),
    (date(2020, 2, 20), Decimal("4.05")),
    (date(2020, 4, 20), Decimal("3.85")),
    (date(2021, 12, 20), Decimal("3.80")),
]
LINES = {"A": 300_000_000, "B": 240_000_000, "C": 180_000_000, "D": 100_000_000, "E": 40_000_000}


def lpr(day: date) -> Decimal:
    return [rate for since, rate in LPR if since <= day][-1]


def make(seed: int) -> plan.Plan:
    rng = random.Random(seed)
    rows = enterprise_rows(rng)
    return plan.plan_history(rng, Settings(), rows, lpr, lambda day: LINES)


@pytest.mark.parametrize("seed", [2021, *range(1, 9)])
def test_any_seed_gives_the_figures_within_the_rules(seed: int) -> None:
    p = make(seed)
    for year, (count, total_wan) in plan.YEARS.items():
        mine = [ln for ln in p.loans if ln.year == year]
        assert len(mine) == count
        assert sum(ln.amount_fen for ln in mine) == total_wan * plan.WAN
        assert all(ln.start.year == year for ln in mine)
    for loan in p.loans:
        assert loan.maturity <= add_months(loan.start, 12)
        assert loan.rate_pct <= lpr(loan.start) + Decimal("1.50")
        assert loan.amount_fen <= LINES["A"]
        repaid = sum(i.principal_fen for i in loan.schedule)
        assert repaid == loan.amount_fen
        assert all(i.day <= loan.maturity for i in loan.schedule)
    sim = plan.simulate(p)
    assert sim.max_leverage <= plan.LEVERAGE_TARGET
    assert sim.max_npl_ratio < Decimal("0.075")
    assert sim.balance_fen > 0
    for year, paid in sim.compensation_by_year.items():
        assert paid * 4 < sum(yuan for d, _, yuan, _ in plan.CONTRIBUTIONS if d.year <= year) * 100
    refs = [a.event_ref for a in p.actions if isinstance(a, plan.Repay | plan.Delinquent)]
    assert len(refs) == len(set(refs))
    assert all(a.day <= plan.END for a in p.actions)


def test_the_plan_follows_its_seed() -> None:
    assert [(ln.ref, ln.amount_fen, ln.start) for ln in make(7).loans] == [
        (ln.ref, ln.amount_fen, ln.start) for ln in make(7).loans
    ]
    assert [ln.start for ln in make(7).loans] != [ln.start for ln in make(8).loans]
