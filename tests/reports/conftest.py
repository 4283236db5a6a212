"""A small loan book across three years and two banks, built the way live data arrives: loans and their
events through the banks' API, fund money through the fund's services.

    fund     2020-06-01 city 2,000,000 + district 3,000,000; 2021-02-01 the same again (10,000,000)
    L1  A  e1 (C)  1,000,000 disbursed 2020-12-31 · repaid 400,000 + interest 2021-06-30 · 95 dpd 2021-09-30
    L2  A  e2 (I)  1,200,000 on 2021-01-01 + 800,000 on 2021-03-15 · 45 dpd 2021-10-31
    L3  B  e3 (M)  500,000 on 2021-02-01 · 100 dpd 2021-08-31 · compensated 2021-11-15: 350,000 paid
                   (share 0.70), recovery 80,000 recognised 2021-12-10, 50,000 remitted 2021-12-20
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
from sqlalchemy.orm import Session

from loanfund.core.config import Settings
from loanfund.fund import contributions
from loanfund.fund import service as fund_service
from loanfund.fund.models import ContributionSource
from loanfund.loans import service as loan_service
from loanfund.loans.models import Loan
from loanfund.loans.state import LoanState
from tests import factories
from tests.factories import TEST_ACTOR, Caller, application_payload, make_enterprise


@dataclass
class Book:
    bank_a: Caller
    bank_b: Caller
    enterprises: dict[str, str] = field(default_factory=dict)  # e1 … e4 → credit code
    loans: dict[str, int] = field(default_factory=dict)  # L1 … L6 → loan id


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
    on_day: Callable[[date], None],
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

    # The fund compensates bank B for L3 and gets part of a recovery back.
    l3 = session.get(Loan, b.loans["L3"], populate_existing=True)
    assert l3 is not None
    assert l3.state is LoanState.non_performing
    loan_service.transition(session, TEST_ACTOR, l3, LoanState.compensated, "claim paid", date(2021, 11, 15))
    ref = ("test_claim", str(l3.id))
    fund_service.reserve(session, TEST_ACTOR, 350_000_00, date(2021, 11, 14), *ref)
    fund_service.pay_reserved(session, TEST_ACTOR, 350_000_00, bank_b.id, date(2021, 11, 15), *ref)
    fund_service.recognise_recovery_receivable(
        session, TEST_ACTOR, 80_000_00, bank_b.id, date(2021, 12, 10), "test_recovery", "1"
    )
    fund_service.settle_recovery(
        session, TEST_ACTOR, 50_000_00, bank_b.id, date(2021, 12, 20), "test_recovery", "1"
    )
    session.commit()

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
