"""Factory functions: they go through the services, as live data does."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.applications import service as application_service
from loanfund.applications.models import Application
from loanfund.applications.schemas import ApplicationCreate
from loanfund.audit.service import Actor
from loanfund.banks import service as bank_service
from loanfund.core.config import Settings
from loanfund.enterprises import service as enterprise_service
from loanfund.enterprises.credit_code import with_check_character
from loanfund.enterprises.models import Enterprise
from loanfund.enterprises.schemas import EnterpriseCreate
from loanfund.loans.models import Loan
from loanfund.loans.repository import stored_events
from loanfund.loans.state import replay
from loanfund.portfolio import service as portfolio
from loanfund.rules import loan_rules
from loanfund.staff import service as staff_service
from loanfund.staff.models import Role

TEST_ACTOR = Actor(kind="system", id=None, name="tests")
_seq = itertools.count(1)


@dataclass
class Caller:
    kind: str
    id: int
    key: str
    name: str
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.headers = {"Authorization": f"Bearer {self.key}"}


def staff_caller(session: Session, settings: Settings, role: str, name: str | None = None) -> Caller:
    staff = staff_service.create_staff(
        session, TEST_ACTOR, name=name or f"{role}-{next(_seq)}", role=Role(role)
    )
    issued = staff_service.issue_key(session, settings, TEST_ACTOR, staff=staff)
    session.commit()
    return Caller(kind="staff", id=staff.id, key=issued.secret, name=staff.name)


def bank_caller(session: Session, settings: Settings, code: str, share: str = "0.80") -> Caller:
    bank = bank_service.create_bank(
        session,
        TEST_ACTOR,
        code=code,
        name=f"Bank {code}",
        fund_share=Decimal(share),
        allow_contracts_without_application=True,  # the tests register historical contracts
    )
    issued = staff_service.issue_key(session, settings, TEST_ACTOR, bank=bank)
    session.commit()
    return Caller(kind="bank", id=bank.id, key=issued.secret, name=code)


def credit_code(n: int | None = None, region: str = "500114") -> str:
    """A valid unified social credit code, distinct for each n."""
    n = next(_seq) if n is None else n
    return with_check_character(f"91{region}MA{n:07d}")


def enterprise_payload(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "credit_code": credit_code(),
        "name": f"重庆测试科技有限公司{next(_seq)}",
        "industry": "C",
        "tech_reg_no": f"2021500114{next(_seq):05d}",
        "tech_reg_date": "2021-03-01",
        "headcount": 50,
        "grade": "A",  # on record: a contract without an application is checked against its line
    }
    data.update(overrides)
    return data


def make_enterprise(session: Session, **overrides: Any) -> Enterprise:
    payload = enterprise_payload(**overrides)
    ent = enterprise_service.create_enterprise(session, TEST_ACTOR, EnterpriseCreate.model_validate(payload))
    session.commit()
    return ent


def d(s: str) -> date:
    return date.fromisoformat(s)


def contract_payload(code: str, ref: str | None = None, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "bank_loan_ref": ref or f"L-{next(_seq)}",
        "credit_code": code,
        "amount": "3000000.00",
        "annual_rate_pct": "4.35",
        "start_date": "2021-03-01",
        "maturity_date": "2022-02-28",
    }
    data.update(overrides)
    return data


def register_loan(client: Any, bank: Caller, code: str, ref: str, start: date, amount: str = "100000") -> int:
    """A contract of `amount` yuan starting on `start` for 360 days, registered through the API."""
    body = contract_payload(
        code,
        ref,
        amount=amount,
        start_date=start.isoformat(),
        maturity_date=(start + timedelta(days=360)).isoformat(),
    )
    r = client.post("/api/v1/loans", json=body, headers=bank.headers)
    assert r.status_code == 201, r.text
    loan_id: int = r.json()["id"]
    return loan_id


# --- applications --------------------------------------------------------------------------------

# Indicators that reach the top of every default cap (score 100, grade A).
STRONG_INDICATORS: dict[str, Any] = {
    "invention_patents": 5,
    "utility_model_patents": 5,
    "software_copyrights": 5,
    "rd_spending": "500000.00",
    "revenue": "10000000.00",
    "total_staff": 50,
    "rd_staff": 10,
    "senior_talent": 4,
    "high_tech_certificate": True,
}
# Indicators that score nothing (below every grade band).
WEAK_INDICATORS: dict[str, Any] = {
    "invention_patents": 0,
    "utility_model_patents": 0,
    "software_copyrights": 0,
    "rd_spending": "0",
    "revenue": "1000000.00",
    "total_staff": 10,
    "rd_staff": 0,
    "senior_talent": 0,
    "high_tech_certificate": False,
}


def application_payload(credit_code: str, bank_code: str, **overrides: Any) -> dict[str, Any]:
    """An application body; `indicators=` overrides single indicators on top of STRONG_INDICATORS."""
    indicators = {**STRONG_INDICATORS, **overrides.pop("indicators", {})}
    data: dict[str, Any] = {
        "credit_code": credit_code,
        "contact": {"name": "张经理", "phone": "13800138000", "email": "cfo@example.cn"},
        "requested_amount": "1000000.00",
        "term_months": 12,
        "bank_code": bank_code,
        "indicators": indicators,
    }
    data.update(overrides)
    return data


def make_application(
    session: Session, settings: Settings, credit_code: str, bank_code: str, today: date, **overrides: Any
) -> tuple[Application, str]:
    """Submit an application through the service; returns it with its status token."""
    body = ApplicationCreate.model_validate(application_payload(credit_code, bank_code, **overrides))
    app, token = application_service.submit_application(session, settings, body, today=today)
    session.commit()
    return app, token


def contribute(session: Session, yuan: int, *, source: str = "district", day: str = "2017-01-01") -> None:
    """Pay money into the fund (so that the leverage cap admits lending)."""
    from loanfund.fund.contributions import record_contribution
    from loanfund.fund.models import ContributionSource

    record_contribution(
        session,
        TEST_ACTOR,
        source=ContributionSource(source),
        amount_fen=yuan * 100,
        value_date=date.fromisoformat(day),
        budget_doc_no=f"DOC-{next(_seq)}",
    )
    session.commit()


def assert_loans_replay_and_aggregates_rebuild(session: Session, settings: Settings) -> None:
    """Every loan equals the replay of its stored events, and the maintained portfolio aggregates equal
    a rebuild from the loans (the rebuild is rolled back)."""
    session.expire_all()
    for loan in session.scalars(select(Loan)):
        assert loan.snapshot == replay(loan.contract, stored_events(session, loan.id), loan_rules(settings))
    maintained = portfolio.snapshot_tables(session)
    nested = session.begin_nested()
    portfolio.rebuild(session, loan_rules(settings))
    rebuilt = portfolio.snapshot_tables(session)
    nested.rollback()
    assert maintained == rebuilt
