"""The summary against figures computed here, independently, from the loans and events the book created;
and the year boundaries (a disbursement on 31 December vs 1 January)."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.banks.models import Bank
from loanfund.fund.models import Contribution
from loanfund.loans.models import Loan, LoanEvent
from loanfund.loans.state import EventKind
from tests.factories import Caller
from tests.reports.conftest import FUND_FIELDS, Book

URL = "/api/v1/reports"
YUAN = re.compile(r"^-?\d+\.\d{2}$")
# Fund movements the book makes outside the loans, by bank code: (value date, fen)
COMPENSATION = {"BANK_B": [(date(2021, 11, 15), 350_000_00)]}
RECOGNISED = {"BANK_B": [(date(2021, 12, 10), 70_000_00)]}
# Reservations standing at a year end: C3's 400,000 from 2022-01-20 (C1's was paid out in 2021)
RESERVED = [(date(2022, 1, 20), 400_000_00)]
RECEIVED = {"BANK_B": [(date(2021, 12, 20), 50_000_00)]}
NPL_DAYS = 90


def yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


def ratio(num: int, den: int) -> str | None:
    if not den:
        return None
    return str((Decimal(num) / Decimal(den)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def expected_summary(
    session: Session, year: int, bank: Bank | None, *, by_bank: bool = False
) -> dict[str, Any]:
    """The summary's figures recomputed from the loans and their events, without the aggregates.
    `by_bank`: asked with the bank's own key, which does not see the fund's position."""
    start, end = date(year, 1, 1), date(year, 12, 31)
    loans = [
        loan
        for loan in session.scalars(select(Loan).execution_options(populate_existing=True))
        if bank is None or loan.bank_id == bank.id
    ]
    events: dict[int, list[LoanEvent]] = defaultdict(list)
    for e in session.scalars(select(LoanEvent)):
        events[e.loan_id].append(e)
    shares = {b.id: b.fund_share for b in session.scalars(select(Bank))}

    count = amount = cumulative = cum_count = repaid = interest = 0
    covered = overdue = npl = compensated = 0
    covered_by_bank: dict[int, int] = defaultdict(int)
    first_day: dict[int, date] = {}
    served: set[int] = set()
    for loan in loans:
        evs = events[loan.id]
        disb = [e for e in evs if e.kind is EventKind.disbursement]
        if disb:
            first = min(e.event_date for e in disb)
            count += start <= first <= end
            cum_count += first <= end
            ent_first = first_day.get(loan.enterprise_id)
            first_day[loan.enterprise_id] = first if ent_first is None else min(ent_first, first)
        amount += sum(e.principal_fen for e in disb if start <= e.event_date <= end)
        cumulative += sum(e.principal_fen for e in disb if e.event_date <= end)
        served |= {loan.enterprise_id for e in disb if start <= e.event_date <= end}
        reps = [e for e in evs if e.kind is EventKind.repayment]
        repaid += sum(e.principal_fen for e in reps if start <= e.event_date <= end)
        interest += sum(e.interest_fen for e in reps if start <= e.event_date <= end)
        # state and outstanding at the end of the year
        out = sum(e.principal_fen for e in disb if e.event_date <= end) - sum(
            e.principal_fen for e in reps if e.event_date <= end
        )
        if out <= 0:
            continue
        if loan.compensated_on is not None and loan.compensated_on <= end:
            if loan.written_off_on is None or loan.written_off_on > end:
                compensated += out
            continue
        dq = [e for e in evs if e.kind is EventKind.delinquency and e.event_date <= end]
        dpd = max(dq, key=lambda e: (e.event_date, e.id)).days_past_due if dq else 0
        covered += out
        covered_by_bank[loan.bank_id] += out
        if dpd and dpd < NPL_DAYS:
            overdue += out
        elif dpd:
            npl += out

    def fund_moves(table: dict[str, list[tuple[date, int]]], upto: date, since: date | None = None) -> int:
        return sum(
            v
            for code, moves in table.items()
            if bank is None or code == bank.code
            for d, v in moves
            if d <= upto and (since is None or d >= since)
        )

    contribs = list(session.scalars(select(Contribution)))
    by_source = {
        src: (
            sum(c.amount_fen for c in contribs if c.source == src and start <= c.value_date <= end),
            sum(c.amount_fen for c in contribs if c.source == src and c.value_date <= end),
        )
        for src in ("city", "district")
    }
    fund_size = sum(cum for _, cum in by_source.values())
    # every bank's compensation and remittances move the fund's cash, whoever asks
    all_paid = sum(v for moves in COMPENSATION.values() for d, v in moves if d <= end)
    all_received = sum(v for moves in RECEIVED.values() for d, v in moves if d <= end)
    balance = fund_size - all_paid + all_received
    reserved = sum(v for d, v in RESERVED if d <= end)
    liability = sum(
        int((Decimal(v) * shares[b]).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        for b, v in covered_by_bank.items()
    )
    ever = {e for e, d in first_day.items() if d <= end}
    want = {
        "year": year,
        "loans_disbursed_count": count,
        "loans_disbursed_amount": yuan(amount),
        "cumulative_loans_count": cum_count,
        "cumulative_disbursed_amount": yuan(cumulative),
        "average_loan_amount": None
        if not count
        else yuan(int((Decimal(amount) / count).quantize(Decimal(1), rounding=ROUND_HALF_UP))),
        "principal_repaid_amount": yuan(repaid),
        "interest_repaid_amount": yuan(interest),
        "enterprises_served": len(served),
        "first_time_borrowers": len({e for e, d in first_day.items() if start <= d <= end}),
        "cumulative_enterprises_served": len(ever),
        "outstanding_principal": yuan(covered),
        "overdue_principal": yuan(overdue),
        "npl_principal": yuan(npl),
        "compensated_principal": yuan(compensated),
        "fund_size": yuan(fund_size),
        "fund_contributed_in_year": yuan(sum(y for y, _ in by_source.values())),
        "contributions": [
            {"source": s, "in_year": yuan(y), "cumulative": yuan(c)} for s, (y, c) in by_source.items()
        ],
        "fund_balance": yuan(balance),
        "reserved_balance": yuan(reserved),
        "available_balance": yuan(balance - reserved),
        "compensation_paid_in_year": yuan(fund_moves(COMPENSATION, end, start)),
        "compensation_paid_cumulative": yuan(fund_moves(COMPENSATION, end)),
        "recoveries_recognised_in_year": yuan(fund_moves(RECOGNISED, end, start)),
        "recoveries_recognised_cumulative": yuan(fund_moves(RECOGNISED, end)),
        "recoveries_received_in_year": yuan(fund_moves(RECEIVED, end, start)),
        "recoveries_received_cumulative": yuan(fund_moves(RECEIVED, end)),
        "max_liability": yuan(liability),
        "npl_ratio": ratio(npl + compensated, covered + compensated),
        "leverage": ratio(covered, balance),
        "coverage_ratio": ratio(balance, liability),
    }
    if by_bank:
        want.update(dict.fromkeys(FUND_FIELDS), contributions=[])
    return want


@pytest.mark.parametrize("year", [2020, 2021, 2022, 2023])
def test_summary_equals_an_independent_computation(
    client: TestClient, session: Session, book: Book, analyst: Caller, year: int
) -> None:
    banks = {b.code: b for b in session.scalars(select(Bank))}
    for who, headers, bank in (
        ("bureau", analyst.headers, None),
        ("bureau, bank A", analyst.headers, banks["BANK_A"]),
        ("bank B's key", book.bank_b.headers, banks["BANK_B"]),
    ):
        params: dict[str, Any] = {"year": year}
        if who == "bureau, bank A":
            params["bank_id"] = banks["BANK_A"].id
        r = client.get(f"{URL}/summary", params=params, headers=headers)
        assert r.status_code == 200, r.text
        served = r.json()
        want = expected_summary(session, year, bank, by_bank=who == "bank B's key")
        got = {k: served[k] for k in want}
        assert got == want, who
        assert served["bank"] == (
            None if bank is None else {"id": bank.id, "code": bank.code, "name": bank.name}
        )


def test_summary_contract_and_the_book_in_2021(client: TestClient, book: Book, analyst: Caller) -> None:
    body = client.get(f"{URL}/summary?year=2021", headers=analyst.headers).json()
    for key in ("loans_disbursed_amount", "cumulative_disbursed_amount", "fund_size", "fund_balance"):
        assert YUAN.match(body[key]), key
    assert body["year"] == 2021
    assert body["loans_disbursed_count"] == 4  # L2 (1 Jan), L3, L4, L5 (31 Dec); not L1, not L6
    assert body["loans_disbursed_amount"] == "5800000.00"
    assert body["cumulative_disbursed_amount"] == "6800000.00"
    assert body["average_loan_amount"] == "1450000.00"
    assert (body["fund_size"], body["fund_contributed_in_year"]) == ("10000000.00", "5000000.00")
    assert body["fund_balance"] == "9700000.00"  # 10,000,000 − 350,000 paid + 50,000 remitted
    assert body["outstanding_principal"] == "4900000.00"  # L1 600k + L2 2M + L4 2M + L5 300k
    assert (body["npl_principal"], body["compensated_principal"]) == ("600000.00", "500000.00")
    assert body["npl_ratio"] == "0.2037"  # 1.1M / 5.4M
    assert body["leverage"] == "0.5052"  # 4.9M / 9.7M
    assert body["max_liability"] == "3720000.00"  # A: 2.9M × 0.8, B: 2M × 0.7
    assert body["coverage_ratio"] == "2.6075"
    assert (body["enterprises_served"], body["first_time_borrowers"]) == (4, 3)


def test_summary_agrees_with_the_fund_exposure_at_year_end(
    client: TestClient, book: Book, analyst: Caller
) -> None:
    for year in (2020, 2021, 2022):
        summary = client.get(f"{URL}/summary?year={year}", headers=analyst.headers).json()
        exposure = client.get(f"/api/v1/fund/exposure?as_of={year}-12-31", headers=analyst.headers).json()
        total = exposure["total"]
        assert summary["outstanding_principal"] == total["covered_outstanding"]
        assert summary["max_liability"] == total["max_liability"]
        assert summary["fund_balance"] == total["fund_balance"]
        assert summary["available_balance"] == total["available_balance"]
        assert summary["leverage"] == total["leverage"]
        assert summary["coverage_ratio"] == total["coverage_ratio"]


def test_year_boundaries(client: TestClient, book: Book, analyst: Caller) -> None:
    def summary(year: int) -> dict[str, Any]:
        body: dict[str, Any] = client.get(f"{URL}/summary?year={year}", headers=analyst.headers).json()
        return body

    # L1's disbursement on 2020-12-31 is 2020's; L2's on 2021-01-01 and L5's on 2021-12-31 are 2021's
    y2020, y2022 = summary(2020), summary(2022)
    assert (y2020["loans_disbursed_count"], y2020["loans_disbursed_amount"]) == (1, "1000000.00")
    assert y2020["outstanding_principal"] == "1000000.00"
    assert (y2020["fund_size"], y2020["fund_contributed_in_year"]) == ("5000000.00", "5000000.00")
    assert (y2022["loans_disbursed_count"], y2022["loans_disbursed_amount"]) == (1, "250000.00")
    assert y2022["cumulative_disbursed_amount"] == "7050000.00"
    assert y2022["compensation_paid_in_year"] == "0.00"
    assert y2022["compensation_paid_cumulative"] == "350000.00"
    assert summary(2019)["cumulative_disbursed_amount"] == "0.00"
    assert summary(2019)["npl_ratio"] is None
    assert summary(2019)["leverage"] is None

    months = client.get(f"{URL}/by-month?year=2021", headers=analyst.headers).json()["rows"]
    assert [m["month"] for m in months] == [f"2021-{m:02d}" for m in range(1, 13)]
    assert (months[0]["loans_disbursed_count"], months[0]["loans_disbursed_amount"]) == (1, "1200000.00")
    assert (months[11]["loans_disbursed_count"], months[11]["loans_disbursed_amount"]) == (1, "300000.00")
    assert months[0]["outstanding_principal"] == "2200000.00"  # L1 from 2020 + L2's first tranche
    months_2020 = client.get(f"{URL}/by-month?year=2020", headers=analyst.headers).json()["rows"]
    assert months_2020[11]["loans_disbursed_amount"] == "1000000.00"
    assert months_2020[11]["outstanding_principal"] == "1000000.00"


def test_an_empty_programme_answers_zeros(client: TestClient, analyst: Caller) -> None:
    body = client.get(f"{URL}/summary?year=2021", headers=analyst.headers).json()
    assert body["loans_disbursed_count"] == 0
    assert body["loans_disbursed_amount"] == "0.00"
    assert body["average_loan_amount"] is None
    assert body["npl_ratio"] is body["leverage"] is body["coverage_ratio"] is None
    assert body["contributions"] == [
        {"source": "city", "in_year": "0.00", "cumulative": "0.00"},
        {"source": "district", "in_year": "0.00", "cumulative": "0.00"},
    ]
