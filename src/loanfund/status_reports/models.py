from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from loanfund.core.db import Base, utcnow


class StatusReport(Base):
    """A bank's month-end report on its loans (like the SBA lender's monthly report). Submitting it
    closes the month for that bank: later events dated on or before `month_end` are refused."""

    __tablename__ = "status_reports"
    __table_args__ = (UniqueConstraint("bank_id", "month_end", name="uq_status_reports_bank_month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    month_end: Mapped[date]
    line_count: Mapped[int]
    discrepancy_count: Mapped[int]
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)


class StatusReportLine(Base):
    __tablename__ = "status_report_lines"
    __table_args__ = (Index("ix_status_report_lines_report", "report_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("status_reports.id"))
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"))
    bank_loan_ref: Mapped[str] = mapped_column(String(64))
    reported_outstanding_fen: Mapped[int]
    reported_days_past_due: Mapped[int]


class Discrepancy(Base):
    """A difference between what a bank reported and what its events say, for bureau staff to follow up."""

    __tablename__ = "status_report_discrepancies"
    __table_args__ = (
        Index("ix_status_report_discrepancies_report", "report_id"),
        Index("ix_status_report_discrepancies_bank_month", "bank_id", "month_end"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("status_reports.id"))
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    month_end: Mapped[date]
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"))
    bank_loan_ref: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(
        String(32)
    )  # balance_mismatch | missing_from_report | unknown_loan | not_open
    reported_outstanding_fen: Mapped[int | None]
    derived_outstanding_fen: Mapped[int | None]
    reported_days_past_due: Mapped[int | None]
