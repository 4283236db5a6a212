"""Concurrent single repayments and delinquency reports on shared loans, against two server processes,
each request sent twice with its key: every answer is 201 and its retry replays it byte for byte, no
event is lost or doubled, every loan equals a replay of its events, the aggregates equal a rebuild, and
the requests were written in groups (`loans.group_commit`) with one audit record each."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import httpx
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from loanfund.audit.service import SYSTEM
from loanfund.banks import service as bank_service
from loanfund.core.clock import business_today
from loanfund.core.config import Settings
from loanfund.enterprises import service as enterprise_service
from loanfund.enterprises.schemas import EnterpriseCreate
from loanfund.fund.contributions import record_contribution
from loanfund.fund.models import ContributionSource
from loanfund.loans import repository
from loanfund.loans import service as loan_service
from loanfund.loans.models import Loan, LoanEvent
from loanfund.loans.state import Event, EventKind, replay
from loanfund.portfolio import service as portfolio
from loanfund.rules import loan_rules
from loanfund.staff import service as staff_service
from tests.factories import credit_code
from tests.reliability.conftest import Server

LOANS = 6
CLIENTS = 12
PER_CLIENT = 15


def _seed(server: Server) -> tuple[list[int], str]:
    settings = Settings(database_url=server.database_url, secret_key=server.env["LOANFUND_SECRET_KEY"])
    today = business_today(settings)
    engine = create_engine(server.database_url)
    with Session(engine, expire_on_commit=False) as s:
        bank = bank_service.create_bank(
            s,
            SYSTEM,
            code="CONC",
            name="Concurrent bank",
            fund_share=Decimal("0.8"),
            allow_contracts_without_application=True,
        )
        key = staff_service.issue_key(s, settings, SYSTEM, bank=bank).secret
        ent = enterprise_service.create_enterprise(
            s,
            SYSTEM,
            EnterpriseCreate(
                credit_code=credit_code(),
                name="重庆并发还款有限公司",
                industry="C",
                tech_reg_no="R2",
                grade="A",
            ),
        )
        record_contribution(
            s,
            SYSTEM,
            source=ContributionSource.district,
            amount_fen=100_000_000,
            value_date=today - timedelta(days=100),
            budget_doc_no="C-1",
        )
        start = today - timedelta(days=90)
        ids = []
        for i in range(LOANS):
            loan = loan_service.register_contract(
                s,
                settings,
                SYSTEM,
                bank,
                bank_loan_ref=f"C-{i}",
                credit_code=ent.credit_code,
                amount=Decimal(1_000_000),
                annual_rate_pct=Decimal("4"),
                start_date=start,
                maturity_date=start + timedelta(days=300),
            )
            loan_service.post_event(
                s,
                settings,
                SYSTEM,
                loan,
                Event(EventKind.disbursement, start, 100_000_000),
                bank_event_ref=f"C-{i}-d",
            )
            ids.append(loan.id)
        s.commit()
    engine.dispose()
    return ids, key


def test_concurrent_single_events_are_written_once_each(server: Server) -> None:
    loan_ids, key = _seed(server)
    server.start(workers=2)
    today = business_today(Settings(database_url=server.database_url))
    barrier = threading.Barrier(CLIENTS)
    problems: list[str] = []
    interest: dict[int, int] = {i: 0 for i in loan_ids}
    lock = threading.Lock()

    def client(c: int) -> None:
        with httpx.Client(
            base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {key}"}
        ) as http:
            barrier.wait()
            for n in range(PER_CLIENT):
                loan = loan_ids[(c + n) % LOANS]
                ref = f"E-{c}-{n}"
                if n % 5 == 4:
                    path, body = f"/api/v1/loans/{loan}/delinquency", {"days_past_due": n, "date": str(today)}
                else:
                    path, body = (
                        f"/api/v1/loans/{loan}/repayments",
                        {"interest": f"{c + 1}.{n:02d}", "date": str(today)},
                    )
                    with lock:
                        interest[loan] += (c + 1) * 100 + n
                headers = {"Idempotency-Key": ref}
                first = http.post(path, json={"bank_event_ref": ref, **body}, headers=headers)
                retry = http.post(path, json={"bank_event_ref": ref, **body}, headers=headers)
                if first.status_code != 201:
                    problems.append(f"{ref}: {first.status_code} {first.text}")
                elif (retry.status_code, retry.content, retry.headers.get("idempotent-replayed")) != (
                    201,
                    first.content,
                    "true",
                ):
                    problems.append(f"{ref}: retry {retry.status_code} {retry.text}")

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not problems, problems[:5]

    settings = Settings(database_url=server.database_url)
    engine = create_engine(server.database_url)
    with Session(engine) as s:
        posted = CLIENTS * PER_CLIENT
        assert s.scalar(select(func.count()).select_from(LoanEvent)) == posted + LOANS
        for loan in s.scalars(select(Loan)):
            assert loan.interest_repaid_fen == interest[loan.id]
            assert loan.snapshot == replay(
                loan.contract, repository.stored_events(s, loan.id), loan_rules(settings)
            )
        maintained = portfolio.snapshot_tables(s)
        portfolio.rebuild(s, loan_rules(settings))
        assert portfolio.snapshot_tables(s) == maintained
        s.rollback()
        audited = select(AuditRecord).where(AuditRecord.action.in_(["loan.repayment", "loan.delinquency"]))
        records = list(s.scalars(audited))
        assert len(records) == posted
        assert len({r.request_id for r in records}) == posted
        # a group's records share their timestamp: fewer timestamps than requests means groups formed
        assert len({r.at for r in records}) < posted
    engine.dispose()
