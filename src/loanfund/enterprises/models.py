from __future__ import annotations

from datetime import date

from sqlalchemy import CheckConstraint, Index, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from loanfund.core.db import Base, TimestampMixin


class Enterprise(TimestampMixin, Base):
    """A technology-based enterprise in the registry."""

    __tablename__ = "enterprises"
    __table_args__ = (
        CheckConstraint("headcount IS NULL OR headcount >= 0", name="headcount_nonneg"),
        Index("ix_enterprises_industry", "industry"),
        Index("ix_enterprises_region_code", "region_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    region_code: Mapped[str] = mapped_column(String(6))
    industry: Mapped[str] = mapped_column(String(1))  # GB/T 4754 section letter
    tech_reg_no: Mapped[str | None] = mapped_column(String(64))  # 科技型企业入库编号
    tech_reg_date: Mapped[date | None]
    high_tech_cert_no: Mapped[str | None] = mapped_column(String(64))
    high_tech_cert_expiry: Mapped[date | None]
    headcount: Mapped[int | None]
    checksum_override: Mapped[bool] = mapped_column(default=False)
    checksum_override_reason: Mapped[str | None] = mapped_column(Text)
    # the knowledge-value grade on record (A–E): from its latest evaluated application, or set by the
    # bureau; a contract without an application is checked against this grade's credit line
    grade: Mapped[str | None] = mapped_column(String(1))

    @property
    def is_registered_tech(self) -> bool:
        return self.tech_reg_no is not None

    def is_high_tech_on(self, day: date) -> bool:
        return (
            self.high_tech_cert_no is not None
            and self.high_tech_cert_expiry is not None
            and self.high_tech_cert_expiry >= day
        )


# the table, for Core statements
ENTERPRISES: Table = Enterprise.__table__  # type: ignore[assignment]
