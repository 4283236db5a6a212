from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from loanfund.core.db import Base, utcnow


class StressTestRun(Base):
    """One run of the fund's stress test: every input it used (calibrated ones included), what it found,
    who ran it and when. Kept as run: a later run never changes an earlier one."""

    __tablename__ = "stress_test_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    preset: Mapped[str] = mapped_column(String(32))
    as_of: Mapped[date]
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    calibration: Mapped[dict[str, Any]] = mapped_column(JSON)
    outputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    duration_ms: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_kind: Mapped[str] = mapped_column(String(16))
    created_by_id: Mapped[int | None]
    created_by_name: Mapped[str] = mapped_column(String(200))


class BankRating(Base):
    """A partner bank's risk rating for a month (1 least risk … 5), with the measures behind it and the
    parameters (weights, thresholds) in force. Stored when the month closes, so that later events do
    not change it; only an explicit, audited recompute replaces it."""

    __tablename__ = "bank_ratings"
    __table_args__ = (
        UniqueConstraint("bank_id", "month", name="uq_bank_ratings_bank_month"),
        Index("ix_bank_ratings_month", "month"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    month: Mapped[date]  # first day of the month rated
    rating: Mapped[int]
    score: Mapped[Decimal] = mapped_column(Numeric(5, 2))  # the composite, 1.00–5.00
    driver: Mapped[str] = mapped_column(String(32))  # the measure that weighed most
    peers: Mapped[int]  # banks rated that month
    measures: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
    computed_by: Mapped[str] = mapped_column(String(200))
