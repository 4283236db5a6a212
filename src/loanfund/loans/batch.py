"""Bulk submission: up to `batch_max_items` contracts and events, all or nothing.

Items are applied in order (an event may refer to a contract earlier in the same batch). Each item is
fully checked before it writes anything, so a refused item leaves no trace; every refused item is
collected, and if there is any, the whole batch is rolled back and answered 422 with the list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from loanfund.audit.service import Actor
from loanfund.banks.models import Bank
from loanfund.core.config import Settings
from loanfund.core.errors import InvalidInput, LoanfundError
from loanfund.core.money import to_fen
from loanfund.loans import service
from loanfund.loans.schemas import (
    BatchContract,
    BatchDelinquency,
    BatchDisbursement,
    BatchItem,
    BatchRepayment,
)
from loanfund.loans.state import Event, EventKind


def submit(
    session: Session, settings: Settings, actor: Actor, bank: Bank, items: Sequence[BatchItem]
) -> tuple[int, int, list[int]]:
    if len(items) > settings.batch_max_items:
        raise InvalidInput(
            f"A batch holds at most {settings.batch_max_items} items; this one has {len(items)}",
            code="batch_too_large",
            details=[{"field": "items", "message": f"at most {settings.batch_max_items}"}],
        )
    lookups = service.Lookups(session, settings)
    errors: list[dict[str, Any]] = []
    loan_ids: list[int] = []
    contracts = events = 0
    savepoint = session.begin_nested()
    for index, item in enumerate(items):
        try:
            if isinstance(item, BatchContract):
                loan = service.register_contract(
                    session,
                    settings,
                    actor,
                    bank,
                    bank_loan_ref=item.bank_loan_ref,
                    credit_code=item.credit_code,
                    amount=item.amount,
                    annual_rate_pct=item.annual_rate_pct,
                    start_date=item.start_date,
                    maturity_date=item.maturity_date,
                    application_no=item.application_no,
                    lookups=lookups,
                )
                contracts += 1
            else:
                loan = service.get_by_ref_for_bank(session, bank.id, item.bank_loan_ref)
                service.post_event(
                    session,
                    settings,
                    actor,
                    loan,
                    _event(item),
                    bank_event_ref=item.bank_event_ref,
                    source="batch",
                    lookups=lookups,
                )
                events += 1
            loan_ids.append(loan.id)
        except LoanfundError as exc:
            errors.append({"index": index, "code": exc.code, "message": exc.message, "details": exc.details})
            loan_ids.append(0)
    if errors:
        savepoint.rollback()
        raise InvalidInput(
            f"{len(errors)} of {len(items)} items are invalid; nothing was written",
            code="batch_invalid",
            details=errors,
        )
    savepoint.commit()
    service.evaluate_breakers(session, settings, actor, lookups)
    return contracts, events, loan_ids


def _event(item: BatchDisbursement | BatchRepayment | BatchDelinquency) -> Event:
    if isinstance(item, BatchDisbursement):
        return Event(EventKind.disbursement, item.date, principal_fen=to_fen(item.amount))
    if isinstance(item, BatchRepayment):
        return Event(
            EventKind.repayment,
            item.date,
            principal_fen=to_fen(item.principal),
            interest_fen=to_fen(item.interest),
        )
    return Event(EventKind.delinquency, item.date, days_past_due=item.days_past_due)
