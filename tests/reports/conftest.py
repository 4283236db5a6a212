"""A small loan book across three years and two banks, built the way live data arrives: loans and their
events through the banks' API, fund money through the fund's services.

    fund     2020-06-01 city 2,000,000 + district 3,000,000; 2021-02-01 the same again (10,000,000)
    L1  A  e1 (C)  1,000,000 disbursed 2020-12-31 · repaid 400,000 + interest 2021-06-30 · 95 dpd 2021-09-30
                   claim C2 filed 2021-12-01, rejected 12-15; C3 filed 2022-01-10, approved 400,000 (reduced)
                   on 2022-01-20 and reserved, not paid
    L2  A  e2 (I)  1,200,000 on 2021-01-01 + 800,000 on 2021-03-15 · 45 dpd 2021-10-31
    L3  B  e3 (M)  500,000 on 2021-02-01 · 100 dpd 2021-08-31 (NPL since 2021-08-21)
                   claim C1 filed 2021-11-01, approved 11-10, paid 2021-11-15: 350,000 (share 0.70), the loan
                   compensated; recovery 120,000 − 20,000 costs → 70,000 the fund's 2021-12-10, 50,000
                   remitted 2021-12-20
    L4  B  e1 (C)  from a grade-A application, 3,000,000 on 2021-05-10 · repaid 1,000,000 2021-11-30
    L5  A  e4 (C)  300,000 on 2021-12-31 · 10 dpd 2022-01-31
    L6  A  e4 (C)  250,000 on 2022-01-01
    status reports for 2022-01-31: bank A misreports L1 and leaves out L2; bank B names an unknown loan
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.banks.models import Bank
from loanfund.claims import service as claims
from loanfund.core.config import Settings
from loanfund.fund import contributions
from loanfund.fund.models import ContributionSource
from loanfund.loans.models import Loan
from loanfund.loans.state import LoanState
from tests import factories
from tests.factories import TEST_ACTOR, Caller, application_payload, make_enterprise

# The summary's fund position: the bureau's, null for a bank's key
FUND_FIELDS = (
    "fund_size",
    "fund_contributed_in_year",
    "fund_balance",
    "reserved_balance",
    "available_balance",
    "leverage",
    "coverage_ratio",
)


@dataclass
class Book:
    bank_a: Caller
    bank_b: Caller
    enterprises: dict[str, str] = field(default_factory=dict)  # e1 … e4 → credit code
    loans: dict[str, int] = field(default_factory=dict)  # L1 … L6 → loan id
    claims: dict[str, int] = field(default_factory=dict)  # C1 … C3 → claim id


@pytest.fixture
def bank_b(session: Session, settings: Settings) -> Caller:
    """Bank B with a fund share of 70%, so that maximum liability differs from bank A's 80%."""
    return factories.bank_caller(session, settings, "BANK_B", share="0.70")


def _ok(r: Any, status: int = 201) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture
def book(
    client: TestClient,
    session: Session,
    settings: Settings,
    bank_a: Caller,
    bank_b: Caller,
    officer: Caller,
    approver: Caller,
    on_day: Callable[[date], None],
    lenient_breakers: None,
) -> Book:
    b = Book(bank_a, bank_b)
    for n, (year, day) in enumerate(((2020, date(2020, 6, 1)), (2021, date(2021, 2, 1)))):
        for source, amount in (
            (ContributionSource.city, 2_000_000_00),
            (ContributionSource.district, 3_000_000_00),
        ):
            contributions.record_contribution(
                session,
                TEST_ACTOR,
                source=source,
                amount_fen=amount,
                value_date=day,
                budget_doc_no=f"{source.value}-{year}-{n}",
            )
    session.commit()
    for name, industry in (("e1", "C"), ("e2", "I"), ("e3", "M"), ("e4", "C")):
        b.enterprises[name] = make_enterprise(session, industry=industry).credit_code

    seq = iter(range(1, 1000))

    def contract(
        caller: Caller, name: str, ent: str, amount: str, start: str, maturity: str, **kw: Any
    ) -> None:
        body = {
            "bank_loan_ref": name,
            "credit_code": b.enterprises[ent],
            "amount": amount,
            "annual_rate_pct": "4.35",
            "start_date": start,
            "maturity_date": maturity,
            **kw,
        }
        b.loans[name] = _ok(client.post("/api/v1/loans", json=body, headers=caller.headers))["id"]

    def event(caller: Caller, name: str, kind: str, **body: Any) -> None:
        url = f"/api/v1/loans/{b.loans[name]}/{kind}"
        _ok(client.post(url, json={"bank_event_ref": f"{name}-E{next(seq)}", **body}, headers=caller.headers))

    a, bb = bank_a, bank_b
    contract(a, "L1", "e1", "1000000", "2020-12-15", "2021-12-14")
    event(a, "L1", "disbursements", date="2020-12-31", amount="1000000")
    event(a, "L1", "repayments", date="2021-06-30", principal="400000", interest="21750")
    event(a, "L1", "delinquency", date="2021-09-30", days_past_due=95)

    contract(a, "L2", "e2", "2000000", "2021-01-01", "2021-12-31")
    event(a, "L2", "disbursements", date="2021-01-01", amount="1200000")
    event(a, "L2", "disbursements", date="2021-03-15", amount="800000")
    event(a, "L2", "delinquency", date="2021-10-31", days_past_due=45)

    contract(bb, "L3", "e3", "500000", "2021-02-01", "2022-01-31")
    event(bb, "L3", "disbursements", date="2021-02-01", amount="500000")
    event(bb, "L3", "delinquency", date="2021-08-31", days_past_due=100)

    on_day(date(2021, 5, 1))
    app = _ok(
        client.post(
            "/api/v1/applications",
            json=application_payload(b.enterprises["e1"], "BANK_B", requested_amount="3000000"),
        )
    )
    number = app["application_no"]
    _ok(
        client.post(
            f"/api/v1/bank/applications/{number}/approve",
            json={"amount": "3000000", "term_months": 12, "annual_rate_pct": "4.35"},
            headers=bb.headers,
        ),
        200,
    )
    contract(bb, "L4", "e1", "3000000", "2021-05-10", "2022-05-09", application_no=number)
    event(bb, "L4", "disbursements", date="2021-05-10", amount="3000000")
    event(bb, "L4", "repayments", date="2021-11-30", principal="1000000", interest="50000")

    contract(a, "L5", "e4", "300000", "2021-12-31", "2022-12-30")
    event(a, "L5", "disbursements", date="2021-12-31", amount="300000")
    event(a, "L5", "delinquency", date="2022-01-31", days_past_due=10)
    contract(a, "L6", "e4", "250000", "2022-01-01", "2022-12-31")
    event(a, "L6", "disbursements", date="2022-01-01", amount="250000")

    # Claims, through the claims service with their business dates: bank B's on L3 is paid and
    # partly recovered; bank A's first claim on L1 is rejected, its second approved reduced, unpaid.
    banks = {b.id: b for b in session.scalars(select(Bank))}
    ids = {name: session.get(Loan, lid, populate_existing=True) for name, lid in b.loans.items()}
    l1, l3 = ids["L1"], ids["L3"]
    assert l1 is not None
    assert l3 is not None
    assert l3.state is LoanState.non_performing
    c1 = claims.file_claim(
        session, settings, TEST_ACTOR, banks[bank_b.id], l3, principal_fen=500_000_00, day=date(2021, 11, 1)
    )
    claims.approve(
        session,
        settings,
        TEST_ACTOR,
        c1,
        reviewer_id=officer.id,
        amount_fen=None,
        reason=None,
        day=date(2021, 11, 10),
    )
    claims.pay(session, settings, TEST_ACTOR, c1, payer_id=approver.id, day=date(2021, 11, 15))
    claims.report_recovery(
        session,
        TEST_ACTOR,
        c1,
        bank_ref="REC-1",
        gross_fen=120_000_00,
        costs_fen=20_000_00,
        day=date(2021, 12, 10),
        today=date(2021, 12, 10),
    )
    claims.remit(
        session,
        TEST_ACTOR,
        c1,
        bank_ref="REM-1",
        amount_fen=50_000_00,
        day=date(2021, 12, 20),
        today=date(2021, 12, 20),
    )
    c2 = claims.file_claim(
        session, settings, TEST_ACTOR, banks[bank_a.id], l1, principal_fen=600_000_00, day=date(2021, 12, 1)
    )
    claims.reject(session, TEST_ACTOR, c2, reviewer_id=officer.id, reason="文件不全", day=date(2021, 12, 15))
    c3 = claims.file_claim(
        session, settings, TEST_ACTOR, banks[bank_a.id], l1, principal_fen=600_000_00, day=date(2022, 1, 10)
    )
    claims.approve(
        session,
        settings,
        TEST_ACTOR,
        c3,
        reviewer_id=officer.id,
        amount_fen=400_000_00,
        reason="部分本金已由保证人清偿",
        day=date(2022, 1, 20),
    )
    session.commit()
    b.claims = {"C1": c1.id, "C2": c2.id, "C3": c3.id}

    _ok(
        client.post(
            "/api/v1/status-reports",
            json={
                "month_end": "2022-01-31",
                "loans": [
                    {"bank_loan_ref": "L1", "outstanding_principal": "590000", "days_past_due": 95},
                    {"bank_loan_ref": "L5", "outstanding_principal": "300000", "days_past_due": 10},
                    {"bank_loan_ref": "L6", "outstanding_principal": "250000", "days_past_due": 0},
                ],
            },
            headers=a.headers,
        )
    )
    _ok(
        client.post(
            "/api/v1/status-reports",
            json={
                "month_end": "2022-01-31",
                "loans": [
                    {"bank_loan_ref": "L4", "outstanding_principal": "2000000", "days_past_due": 0},
                    {"bank_loan_ref": "GHOST", "outstanding_principal": "10000", "days_past_due": 0},
                ],
            },
            headers=bb.headers,
        )
    )
    return b
