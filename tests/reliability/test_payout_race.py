"""Two server processes receive 20 concurrent payout confirmations when the fund can cover only 5:
exactly 5 are paid, 15 get `fund_insufficient`, the fund's cash never goes below zero, and the ledger
reconciles."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import httpx
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from loanfund.audit.service import SYSTEM
from loanfund.banks import service as bank_service
from loanfund.claims import service as claim_service
from loanfund.claims.models import Claim, ClaimState
from loanfund.core.clock import business_today
from loanfund.core.config import Settings
from loanfund.enterprises import service as enterprise_service
from loanfund.enterprises.schemas import EnterpriseCreate
from loanfund.fund import ledger
from loanfund.fund import service as fund_service
from loanfund.fund.contributions import record_contribution
from loanfund.fund.models import ContributionSource
from loanfund.loans import service as loan_service
from loanfund.loans.state import Event, EventKind
from loanfund.staff import service as staff_service
from loanfund.staff.models import Role
from tests.factories import credit_code
from tests.reliability.conftest import Server

CLAIMS = 20
FITS = 5
PRINCIPAL_FEN = 10_000_000  # 100,000 yuan; the fund pays 80,000 of each


def _seed(server: Server) -> tuple[list[int], str]:
    settings = Settings(database_url=server.database_url, secret_key=server.env["LOANFUND_SECRET_KEY"])
    today = business_today(settings)
    engine = create_engine(server.database_url)
    with Session(engine, expire_on_commit=False) as s:
        bank = bank_service.create_bank(
            s,
            SYSTEM,
            code="RACE",
            name="Race bank",
            fund_share=Decimal("0.8"),
            allow_contracts_without_application=True,
        )
        reviewer = staff_service.create_staff(s, SYSTEM, name="reviewer", role=Role.officer)
        payer = staff_service.create_staff(s, SYSTEM, name="payer", role=Role.approver)
        key = staff_service.issue_key(s, settings, SYSTEM, staff=payer).secret
        ent = enterprise_service.create_enterprise(
            s,
            SYSTEM,
            EnterpriseCreate(
                credit_code=credit_code(),
                name="重庆并发测试有限公司",
                industry="C",
                tech_reg_no="R1",
                grade="A",
            ),
        )
        record_contribution(
            s,
            SYSTEM,
            source=ContributionSource.city,
            amount_fen=FITS * 8_000_000,
            value_date=today,
            budget_doc_no="R-1",
        )
        start = today - timedelta(days=200)
        claims = []
        loans = []
        for i in range(CLAIMS + 1):
            amount = PRINCIPAL_FEN * (5 if i == CLAIMS else 1)
            loan = loan_service.register_contract(
                s,
                settings,
                SYSTEM,
                bank,
                bank_loan_ref=f"R-{i}",
                credit_code=ent.credit_code,
                amount=Decimal(amount) / 100,
                annual_rate_pct=Decimal("4"),
                start_date=start,
                maturity_date=start + timedelta(days=300),
            )
            loan_service.post_event(
                s,
                settings,
                SYSTEM,
                loan,
                Event(EventKind.disbursement, start, amount),
                bank_event_ref=f"R-{i}-d",
            )
            loans.append((loan, amount))
        # then every loan defaults (the bank's breaker trips on the first: no more lending after it)
        for i, (loan, amount) in enumerate(loans):
            loan_service.post_event(
                s,
                settings,
                SYSTEM,
                loan,
                Event(EventKind.delinquency, today, days_past_due=95),
                bank_event_ref=f"R-{i}-q",
            )
            claims.append(
                claim_service.file_claim(s, settings, SYSTEM, bank, loan, principal_fen=amount, day=today)
            )
        blocker = claims.pop()  # reserves the whole fund while the others are approved unfunded
        claim_service.approve(
            s, settings, SYSTEM, blocker, reviewer_id=reviewer.id, amount_fen=None, reason=None, day=today
        )
        for c in claims:
            claim_service.approve(
                s, settings, SYSTEM, c, reviewer_id=reviewer.id, amount_fen=None, reason=None, day=today
            )
            assert c.reserved_fen == 0
        claim_service.reject(s, SYSTEM, blocker, reviewer_id=reviewer.id, reason="withdrawn", day=today)
        assert fund_service.fund_position(s).available_fen == FITS * 8_000_000
        s.commit()
        ids = [c.id for c in claims]
    engine.dispose()
    return ids, key


def test_twenty_payouts_five_fit(server: Server) -> None:
    ids, key = _seed(server)
    server.start(workers=2)
    barrier = threading.Barrier(CLAIMS)
    results: dict[int, tuple[int, str]] = {}

    def pay(claim_id: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {key}"}) as c:
            barrier.wait()
            r = c.post(f"/api/v1/claims/{claim_id}/pay")
            results[claim_id] = (
                r.status_code,
                r.json().get("error", {}).get("code", r.json().get("state", "")),
            )

    threads = [threading.Thread(target=pay, args=(cid,)) for cid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    outcomes = sorted(results.values())
    assert outcomes.count((200, "paid")) == FITS, outcomes
    assert outcomes.count((409, "fund_insufficient")) == CLAIMS - FITS, outcomes

    engine = create_engine(server.database_url)
    with Session(engine) as s:
        position = fund_service.fund_position(s)
        assert position.balance_fen == 0
        assert position.available_fen == 0
        assert position.compensation_paid_fen == FITS * 8_000_000
        assert s.scalar(select(func.count()).select_from(Claim).where(Claim.state == ClaimState.paid)) == FITS
        assert ledger.reconcile(s).ok
    engine.dispose()
