"""Aggregates of the loan book that the write path keeps current, in the same transaction.

Reports and exposure read these small tables instead of the loans: their size grows with banks × days
(or banks × industries × grades × months), not with the number of loans.

Stocks (outstanding principal by category) are kept as *deltas* on the day / month the change happened,
so the stock at any date is the sum of the deltas up to it. `portfolio_totals` holds every bank's deltas
summed: the figures now in one row per bank, and a stock at an earlier date is that less the deltas
dated after it — so reading the present, or a recent date, touches few rows however long the history.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import ForeignKey, Index, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from loanfund.core.db import Base


class _Figures:
    # flows
    disbursed_fen: Mapped[int] = mapped_column(default=0)
    principal_repaid_fen: Mapped[int] = mapped_column(default=0)
    interest_repaid_fen: Mapped[int] = mapped_column(default=0)
    loans_started: Mapped[int] = mapped_column(default=0)  # loans whose first disbursement fell here
    # stock deltas: outstanding principal by category
    d_covered_fen: Mapped[int] = mapped_column(default=0)  # active + overdue + non_performing
    d_overdue_fen: Mapped[int] = mapped_column(default=0)
    d_npl_fen: Mapped[int] = mapped_column(default=0)
    d_compensated_fen: Mapped[int] = mapped_column(default=0)  # compensated, not yet written off


class PortfolioDaily(_Figures, Base):
    __tablename__ = "portfolio_daily"
    __table_args__ = (
        PrimaryKeyConstraint("bank_id", "day", name="pk_portfolio_daily"),
        Index("ix_portfolio_daily_day", "day"),
    )

    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    day: Mapped[date]


class PortfolioTotal(_Figures, Base):
    """Every `portfolio_daily` row of a bank summed (kept in the same transactions)."""

    __tablename__ = "portfolio_totals"

    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"), primary_key=True)


class PortfolioMonthly(_Figures, Base):
    __tablename__ = "portfolio_monthly"
    __table_args__ = (
        PrimaryKeyConstraint("bank_id", "industry", "grade", "month", name="pk_portfolio_monthly"),
    )

    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    industry: Mapped[str] = mapped_column(String(1))
    grade: Mapped[str] = mapped_column(String(1))  # A–E, or U for loans without an evaluation
    month: Mapped[date]  # first day of the month


class BorrowerYear(Base):
    """An enterprise borrowed (had a disbursement) in a year, from a bank; bank_id 0 = any bank."""

    __tablename__ = "borrower_years"
    __table_args__ = (PrimaryKeyConstraint("enterprise_id", "bank_id", "year", name="pk_borrower_years"),)

    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"))
    bank_id: Mapped[int]
    year: Mapped[int]


class FirstBorrowing(Base):
    """The year of an enterprise's first disbursement, from a bank; bank_id 0 = from any bank."""

    __tablename__ = "first_borrowings"
    __table_args__ = (PrimaryKeyConstraint("enterprise_id", "bank_id", name="pk_first_borrowings"),)

    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"))
    bank_id: Mapped[int]
    first_year: Mapped[int]


class YearCounter(Base):
    """Enterprises served and first-time borrowers per year; bank_id 0 = programme-wide."""

    __tablename__ = "year_counters"
    __table_args__ = (PrimaryKeyConstraint("bank_id", "year", name="pk_year_counters"),)

    bank_id: Mapped[int]
    year: Mapped[int]
    served: Mapped[int] = mapped_column(default=0)
    first_time: Mapped[int] = mapped_column(default=0)
