from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import CheckConstraint, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from loanfund.core.db import Base, TimestampMixin


class LprRate(TimestampMixin, Base):
    """The one-year loan prime rate (or, before 2019-08-20, the benchmark rate) from a date on."""

    __tablename__ = "lpr_rates"
    __table_args__ = (CheckConstraint("rate_pct > 0 AND rate_pct < 100", name="rate_range"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    effective_date: Mapped[date] = mapped_column(unique=True)
    rate_pct: Mapped[Decimal] = mapped_column(Numeric(6, 4))
    kind: Mapped[str] = mapped_column(String(16), default="lpr")  # lpr | benchmark


class CreditLine(TimestampMixin, Base):
    """The credit line of a knowledge-value grade, in a table versioned by effective date."""

    __tablename__ = "credit_lines"
    __table_args__ = (
        UniqueConstraint("effective_date", "grade", name="uq_credit_lines_date_grade"),
        CheckConstraint("line_fen > 0", name="line_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    effective_date: Mapped[date]
    grade: Mapped[str] = mapped_column(String(1))
    line_fen: Mapped[int]
