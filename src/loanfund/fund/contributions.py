"""Contributions from the city and district budgets: Dr fund_cash:available / Cr contrib:<source>."""

from __future__ import annotations

from datetime import date

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loanfund.audit.service import Actor, record, snapshot
from loanfund.core.errors import field_error
from loanfund.fund import chart, ledger, repository
from loanfund.fund.exceptions import DuplicateBudgetDocument
from loanfund.fund.models import Contribution, ContributionSource, LedgerTransaction, TransactionKind

REFERENCE_TYPE = "contribution"
_FIELDS = ["source", "amount_fen", "value_date", "budget_doc_no", "memo", "transaction_id"]


def _duplicate(budget_doc_no: str) -> DuplicateBudgetDocument:
    return DuplicateBudgetDocument(
        f"A contribution under budget document {budget_doc_no} is already recorded",
        details={"budget_doc_no": budget_doc_no},
    )


def record_contribution(
    session: Session,
    actor: Actor,
    *,
    source: ContributionSource,
    amount_fen: int,
    value_date: date,
    budget_doc_no: str,
    memo: str | None = None,
    today: date | None = None,
) -> Contribution:
    """Record money paid into the fund and post it. `today` (the business date), when given, refuses a
    value date in the future: money that has not arrived is not in the fund."""
    if today is not None and value_date > today:
        raise field_error(
            "value_date_in_future", f"The value date {value_date} is in the future", "value_date"
        )
    if repository.contribution_by_doc_no(session, budget_doc_no) is not None:
        raise _duplicate(budget_doc_no)
    with session.begin_nested():  # all or nothing, also for a caller that catches the error
        txn = ledger.post(
            session,
            actor,
            TransactionKind.contribution,
            value_date,
            [
                ledger.debit(chart.CASH_AVAILABLE, amount_fen),
                ledger.credit(chart.contrib(source), amount_fen),
            ],
            memo=memo or f"{source.value} budget document {budget_doc_no}",
            reference_type=REFERENCE_TYPE,
            reference_id=budget_doc_no,
        )
        contribution = Contribution(
            source=source,
            amount_fen=amount_fen,
            value_date=value_date,
            budget_doc_no=budget_doc_no,
            memo=memo,
            transaction_id=txn.id,
        )
        session.add(contribution)
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError as exc:  # a concurrent request recorded the same document first
            raise _duplicate(budget_doc_no) from exc
        record(
            session,
            actor,
            "fund.contribution.create",
            "contribution",
            contribution.id,
            after=snapshot(contribution, _FIELDS),
        )
    return contribution


def on_reversed(
    session: Session, actor: Actor, original: LedgerTransaction, reversal: LedgerTransaction
) -> None:
    """Mark the contribution behind a reversed transaction; its budget document number is free again."""
    contribution = repository.contribution_by_transaction(session, original.id)
    if contribution is None:  # only contributions post under this reference type
        return
    contribution.reversal_transaction_id = reversal.id
    session.flush()
    record(
        session,
        actor,
        "fund.contribution.reverse",
        "contribution",
        contribution.id,
        after={"reversal_transaction_id": reversal.id},
    )
