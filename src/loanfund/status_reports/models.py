from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from loanfund.core.db import Base, utcnow


class StatusReport(Base):
    """A bank's month-end report on its loans (like the SBA lender's monthly report). Submitting it
    closes the month for that bank: later events dated on or before `month_end` are refused.

    A closed month may be reported again, with a reason: an amendment is the next `version` of the
    month's report, and every version stays readable."""

    __tablename__ = "status_reports"
    __table_args__ = (
        UniqueConstraint("bank_id", "month_end", "version", name="uq_status_reports_bank_month_version"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("version = 1 OR reason IS NOT NULL", name="amendment_reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    month_end: Mapped[date]
    version: Mapped[int] = mapped_column(default=1)
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("status_reports.id"))
    reason: Mapped[str | None] = mapped_column(Text)  # why an amendment was filed
    line_count: Mapped[int]
    discrepancy_count: Mapped[int]
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)


class MonthReopening(Base):
    """An officer's reopening of a bank's closed month, with a reason, so that late events can be
    posted: from the reopened month on, the bank's events are accepted again until the bank files the
    month's amended report (`closed_by_report_id`)."""

    __tablename__ = "month_reopenings"
    __table_args__ = (
        Index(
            "ix_month_reopenings_open",
            "bank_id",
            "month_end",
            postgresql_where=text("closed_at IS NULL"),
            sqlite_where=text("closed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    month_end: Mapped[date]
    reason: Mapped[str] = mapped_column(Text)
    reopened_by: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    reopened_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_by_report_id: Mapped[int | None] = mapped_column(ForeignKey("status_reports.id"))
    closed_at: Mapped[datetime | None]


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
