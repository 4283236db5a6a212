from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from loanfund.core.db import Base, TimestampMixin, utcnow


class ClaimState(enum.StrEnum):
    submitted = "submitted"
    approved = "approved"
    rejected = "rejected"
    paid = "paid"


class Claim(TimestampMixin, Base):
    """A bank's compensation claim (风险补偿 / 代偿) on a non-performing loan."""

    __tablename__ = "claims"
    __table_args__ = (
        # one claim in play per loan: a rejected claim may be followed by a new one, a paid one may not
        Index(
            "uq_claims_loan_open",
            "loan_id",
            unique=True,
            postgresql_where=text("state <> 'rejected'"),
            sqlite_where=text("state <> 'rejected'"),
        ),
        Index("ix_claims_bank_state", "bank_id", "state"),
        CheckConstraint("principal_fen > 0", name="principal_positive"),
        CheckConstraint("claimed_fen > 0 AND claimed_fen <= principal_fen", name="claimed_range"),
        CheckConstraint(
            "approved_fen IS NULL OR (approved_fen > 0 AND approved_fen <= claimed_fen)",
            name="approved_range",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    state: Mapped[ClaimState] = mapped_column(
        Enum(ClaimState, native_enum=False, length=16, validate_strings=True), default=ClaimState.submitted
    )
    principal_fen: Mapped[int]  # outstanding principal at default, as the bank states it
    fund_share: Mapped[Decimal] = mapped_column(Numeric(5, 4))
    claimed_fen: Mapped[int]  # fund_share × principal; interest is never compensated
    filed_on: Mapped[date]
    approved_fen: Mapped[int | None]
    reduction_reason: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    reviewed_on: Mapped[date | None]
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    reserved_fen: Mapped[int] = mapped_column(default=0)
    paid_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    paid_on: Mapped[date | None]
    paid_fen: Mapped[int | None]
    collection_closed_on: Mapped[date | None]
    # the loan became non-performing within the early-default window: approving needs a review note
    early_default: Mapped[bool] = mapped_column(default=False, server_default=false())
    review_note: Mapped[str | None] = mapped_column(Text)

    def funding(self) -> tuple[bool | None, int | None]:
        """(funded, shortfall in fen) as the API shows them: an approved claim is funded when its whole
        approved amount is reserved (the shortfall is the rest; `repository.list_readable(funded=...)`
        filters on the same comparison); a paid claim is funded; a submitted or rejected one is neither."""
        if self.state is ClaimState.approved and self.approved_fen is not None:
            shortfall = max(0, self.approved_fen - self.reserved_fen)
            return shortfall == 0, shortfall
        if self.state is ClaimState.paid:
            return True, None
        return None, None


class RecoveryKind(enum.StrEnum):
    recovery = "recovery"  # the bank collected money after compensation
    remittance = "remittance"  # the bank passed the fund's share on


class Recovery(Base):
    """What a bank collected after compensation, and what it remitted to the fund."""

    __tablename__ = "recoveries"
    __table_args__ = (
        UniqueConstraint("bank_id", "bank_ref", name="uq_recoveries_bank_ref"),
        Index("ix_recoveries_claim", "claim_id"),
        CheckConstraint("gross_fen >= 0 AND costs_fen >= 0 AND fund_share_fen >= 0", name="amounts_nonneg"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"))
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    bank_ref: Mapped[str] = mapped_column(String(64))
    kind: Mapped[RecoveryKind] = mapped_column(
        Enum(RecoveryKind, native_enum=False, length=16, validate_strings=True)
    )
    reported_on: Mapped[date]
    gross_fen: Mapped[int] = mapped_column(default=0)
    costs_fen: Mapped[int] = mapped_column(default=0)
    fund_share_fen: Mapped[int] = mapped_column(
        default=0
    )  # recovery: fund's share of the net; remittance: amount
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
