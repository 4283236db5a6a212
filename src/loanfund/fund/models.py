"""The fund's double-entry ledger and its contributions (docs/adr/0004-fund-ledger.md).

An entry is a side (debit or credit) and a positive amount in fen. Entries and transactions are written
once and never updated or deleted (a guard below refuses it at flush); a mistake is corrected by a
reversing transaction that points at the original. `account_balances` holds the running debit and credit
totals of each account, updated in the same transaction as the entries, and is the row a posting locks.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, Enum, ForeignKey, Index, String, Text, event, text
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from loanfund.core.db import Base, utcnow


class AccountType(enum.StrEnum):
    asset = "asset"
    liability = "liability"
    equity = "equity"
    income = "income"
    expense = "expense"

    @property
    def debit_normal(self) -> bool:
        return self in (AccountType.asset, AccountType.expense)


class Side(enum.StrEnum):
    debit = "debit"
    credit = "credit"


class TransactionKind(enum.StrEnum):
    contribution = "contribution"
    reserve = "reserve"
    release = "release"
    compensation_payment = "compensation_payment"
    recovery_recognised = "recovery_recognised"
    recovery_settled = "recovery_settled"
    interest = "interest"
    reversal = "reversal"


class ContributionSource(enum.StrEnum):
    city = "city"
    district = "district"


def _enum(cls: type[enum.Enum], length: int) -> Enum:
    return Enum(cls, native_enum=False, length=length, validate_strings=True)


class LedgerAccount(Base):
    """An account of the fund's chart (see `fund/chart.py`); `code` is stable and unique."""

    __tablename__ = "ledger_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    category: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[AccountType] = mapped_column(_enum(AccountType, 16))
    bank_id: Mapped[int | None] = mapped_column(ForeignKey("banks.id"), index=True)
    no_negative: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def debit_normal(self) -> bool:
        return self.type.debit_normal


class AccountBalance(Base):
    """Running totals of one account, maintained by `ledger.post` under a row lock."""

    __tablename__ = "account_balances"
    __table_args__ = (
        CheckConstraint("debits_fen >= 0", name="debits_nonneg"),
        CheckConstraint("credits_fen >= 0", name="credits_nonneg"),
    )

    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), primary_key=True)
    debits_fen: Mapped[int] = mapped_column(default=0)
    credits_fen: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerTransaction(Base):
    """A balanced set of entries. `reverses_id` is unique: a transaction is reversed at most once."""

    __tablename__ = "ledger_transactions"
    __table_args__ = (
        Index("ix_ledger_transactions_reference", "reference_type", "reference_id"),
        CheckConstraint("(reference_type IS NULL) = (reference_id IS NULL)", name="reference_pair"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[TransactionKind] = mapped_column(_enum(TransactionKind, 32), index=True)
    value_date: Mapped[date] = mapped_column(index=True)
    posted_at: Mapped[datetime] = mapped_column(default=utcnow)
    memo: Mapped[str | None] = mapped_column(Text)
    reference_type: Mapped[str | None] = mapped_column(String(32))
    reference_id: Mapped[str | None] = mapped_column(String(64))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"), unique=True)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None]
    actor_name: Mapped[str] = mapped_column(String(200))

    entries: Mapped[list[LedgerEntry]] = relationship(
        back_populates="transaction", lazy="raise", order_by="LedgerEntry.id"
    )
    # The transaction that reverses this one, if any (one-to-one through the unique `reverses_id`).
    reversed_by: Mapped[LedgerTransaction | None] = relationship(
        foreign_keys=[reverses_id], uselist=False, lazy="raise", viewonly=True
    )


class LedgerEntry(Base):
    """One leg of a transaction: a side and a positive amount. `value_date` is copied from the
    transaction so that balances at a date are one indexed range scan per account."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        Index("ix_ledger_entries_account_value_date", "account_id", "value_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    side: Mapped[Side] = mapped_column(_enum(Side, 8))
    amount_fen: Mapped[int]
    value_date: Mapped[date]

    transaction: Mapped[LedgerTransaction] = relationship(back_populates="entries", lazy="raise")
    account: Mapped[LedgerAccount] = relationship(lazy="raise")


class Contribution(Base):
    """Money paid into the fund by the city or district budget, under a budget document number.

    The document number is unique among contributions that stand; reversing a contribution (a mistake)
    frees its number so that the corrected one can be recorded.
    """

    __tablename__ = "contributions"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        Index(
            "uq_contributions_budget_doc_no_standing",
            "budget_doc_no",
            unique=True,
            sqlite_where=text("reversal_transaction_id IS NULL"),
            postgresql_where=text("reversal_transaction_id IS NULL"),
        ),
        Index("ix_contributions_value_date", "value_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[ContributionSource] = mapped_column(_enum(ContributionSource, 16))
    amount_fen: Mapped[int]
    value_date: Mapped[date]
    budget_doc_no: Mapped[str] = mapped_column(String(64))
    memo: Mapped[str | None] = mapped_column(Text)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), unique=True)
    reversal_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_transactions.id"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerImmutable(RuntimeError):
    """Raised at flush when code tries to change or delete a ledger entry or transaction."""


@event.listens_for(Session, "before_flush")
def _refuse_ledger_changes(session: Session, _ctx: Any, _instances: Any) -> None:
    for obj in session.deleted:
        if isinstance(obj, LedgerEntry | LedgerTransaction):
            raise LedgerImmutable(f"{type(obj).__name__} {obj.id} cannot be deleted; reverse it")
    for obj in session.dirty:
        if isinstance(obj, LedgerEntry | LedgerTransaction) and session.is_modified(obj):
            raise LedgerImmutable(f"{type(obj).__name__} {obj.id} cannot be changed; reverse it")
