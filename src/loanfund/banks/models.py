from __future__ import annotations

import enum
from decimal import Decimal

from sqlalchemy import CheckConstraint, Enum, Numeric, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from loanfund.core.db import Base, TimestampMixin


class BankStatus(enum.StrEnum):
    active = "active"
    suspended = "suspended"


class Bank(TimestampMixin, Base):
    """A partner bank and its cooperation terms."""

    __tablename__ = "banks"
    __table_args__ = (
        CheckConstraint("fund_share > 0 AND fund_share <= 1", name="fund_share_range"),
        CheckConstraint("lending_quota_fen IS NULL OR lending_quota_fen > 0", name="quota_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    fund_share: Mapped[Decimal] = mapped_column(Numeric(5, 4))
    lending_quota_fen: Mapped[int | None]
    status: Mapped[BankStatus] = mapped_column(
        Enum(BankStatus, native_enum=False, length=16, validate_strings=True), default=BankStatus.active
    )
    status_reason: Mapped[str | None] = mapped_column(Text)
    # contracts without an application (historical imports) are refused unless an officer allows them
    allow_contracts_without_application: Mapped[bool] = mapped_column(default=False, server_default=false())
