"""Queries behind the fund's lists. The fund is bureau-only: no per-caller scoping is needed here."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from loanfund.fund.models import (
    AccountBalance,
    Contribution,
    ContributionSource,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    TransactionKind,
)


def contribution_by_doc_no(session: Session, budget_doc_no: str) -> Contribution | None:
    """The standing (not reversed) contribution recorded under a budget document number."""
    return session.scalar(
        select(Contribution).where(
            Contribution.budget_doc_no == budget_doc_no, Contribution.reversal_transaction_id.is_(None)
        )
    )


def contribution_by_transaction(session: Session, transaction_id: int) -> Contribution | None:
    return session.scalar(select(Contribution).where(Contribution.transaction_id == transaction_id))


def list_contributions(
    session: Session,
    *,
    source: ContributionSource | None,
    year: int | None,
    after_id: int | None,
    limit: int,
) -> list[Contribution]:
    stmt = select(Contribution).order_by(Contribution.id).limit(limit)
    if source is not None:
        stmt = stmt.where(Contribution.source == source)
    if year is not None:
        stmt = stmt.where(Contribution.value_date.between(date(year, 1, 1), date(year, 12, 31)))
    if after_id is not None:
        stmt = stmt.where(Contribution.id > after_id)
    return list(session.scalars(stmt))


def list_transactions(
    session: Session,
    *,
    kind: TransactionKind | None,
    reference_type: str | None,
    reference_id: str | None,
    value_from: date | None,
    value_to: date | None,
    after_id: int | None,
    limit: int,
) -> list[LedgerTransaction]:
    """Newest first, with entries and their accounts loaded."""
    stmt = (
        select(LedgerTransaction)
        .options(
            selectinload(LedgerTransaction.entries).selectinload(LedgerEntry.account),
            selectinload(LedgerTransaction.reversed_by),
        )
        .order_by(LedgerTransaction.id.desc())
        .limit(limit)
    )
    if kind is not None:
        stmt = stmt.where(LedgerTransaction.kind == kind)
    if reference_type is not None:
        stmt = stmt.where(LedgerTransaction.reference_type == reference_type)
    if reference_id is not None:
        stmt = stmt.where(LedgerTransaction.reference_id == reference_id)
    if value_from is not None:
        stmt = stmt.where(LedgerTransaction.value_date >= value_from)
    if value_to is not None:
        stmt = stmt.where(LedgerTransaction.value_date <= value_to)
    if after_id is not None:
        stmt = stmt.where(LedgerTransaction.id < after_id)
    return list(session.scalars(stmt))


def list_accounts(
    session: Session,
    *,
    category: str | None,
    bank_id: int | None,
    after_id: int | None,
    limit: int,
) -> list[tuple[LedgerAccount, int, int]]:
    """Accounts in id order with their running debit and credit totals."""
    stmt = (
        select(LedgerAccount, AccountBalance.debits_fen, AccountBalance.credits_fen)
        .join(AccountBalance, AccountBalance.account_id == LedgerAccount.id)
        .order_by(LedgerAccount.id)
        .limit(limit)
    )
    if category is not None:
        stmt = stmt.where(LedgerAccount.category == category)
    if bank_id is not None:
        stmt = stmt.where(LedgerAccount.bank_id == bank_id)
    if after_id is not None:
        stmt = stmt.where(LedgerAccount.id > after_id)
    return [(a, d, c) for a, d, c in session.execute(stmt).all()]
