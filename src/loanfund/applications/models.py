from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Enum, ForeignKey, Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from loanfund.applications.evaluation import Indicators
from loanfund.banks.models import Bank
from loanfund.core.db import Base, TimestampMixin
from loanfund.enterprises.models import Enterprise


class ApplicationStatus(enum.StrEnum):
    ineligible = "ineligible"  # not a registered tech enterprise, or score below the lowest band
    pending_bank = "pending_bank"  # evaluated; waiting for the chosen bank's decision
    approved = "approved"  # the bank approved amount, term and rate
    rejected = "rejected"  # the bank declined, with a reason
    lent = "lent"  # a loan contract was registered from the approval


class IneligibleReason(enum.StrEnum):
    enterprise_not_in_registry = "enterprise_not_in_registry"
    enterprise_not_registered_tech = "enterprise_not_registered_tech"
    score_below_threshold = "score_below_threshold"


class Application(TimestampMixin, Base):
    """An enterprise's application for a knowledge-value credit loan, its evaluation and the bank's decision.

    Money in fen. `grade`/`credit_line_fen` are the ones in force (after any officer override);
    `computed_grade`/`computed_line_fen` are what the score gave.
    """

    __tablename__ = "applications"
    __table_args__ = (
        CheckConstraint("requested_amount_fen > 0", name="requested_positive"),
        CheckConstraint("term_months >= 1", name="term_positive"),
        CheckConstraint(
            "invention_patents >= 0 AND utility_model_patents >= 0 AND software_copyrights >= 0 "
            "AND senior_talent >= 0",
            name="counts_nonneg",
        ),
        CheckConstraint("rd_spending_fen >= 0 AND revenue_fen >= 0", name="money_nonneg"),
        CheckConstraint("total_staff >= 1 AND rd_staff >= 0 AND rd_staff <= total_staff", name="staff_range"),
        CheckConstraint("credit_line_fen IS NULL OR credit_line_fen > 0", name="line_positive"),
        CheckConstraint(
            "approved_amount_fen IS NULL OR approved_amount_fen > 0", name="approved_amount_positive"
        ),
        Index("ix_applications_bank_status", "bank_id", "status"),
        Index("ix_applications_status", "status"),
        Index("ix_applications_credit_code", "credit_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    application_no: Mapped[str] = mapped_column(String(32), unique=True)
    status_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    application_date: Mapped[date]
    status: Mapped[ApplicationStatus] = mapped_column(
        Enum(ApplicationStatus, native_enum=False, length=16, validate_strings=True)
    )
    ineligible_reason: Mapped[IneligibleReason | None] = mapped_column(
        Enum(IneligibleReason, native_enum=False, length=40, validate_strings=True)
    )

    # who applies, to which bank, for what
    credit_code: Mapped[str] = mapped_column(String(18))
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"), index=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    contact_name: Mapped[str] = mapped_column(String(100))
    contact_phone: Mapped[str] = mapped_column(String(32))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    requested_amount_fen: Mapped[int]
    term_months: Mapped[int]

    # knowledge-value indicators, as declared
    invention_patents: Mapped[int]
    utility_model_patents: Mapped[int]
    software_copyrights: Mapped[int]
    rd_spending_fen: Mapped[int]
    revenue_fen: Mapped[int]
    rd_staff: Mapped[int]
    total_staff: Mapped[int]
    senior_talent: Mapped[int]
    high_tech_certificate: Mapped[bool]

    # evaluation
    evaluated_at: Mapped[datetime | None]
    score: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    breakdown: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    computed_grade: Mapped[str | None] = mapped_column(String(1))
    computed_line_fen: Mapped[int | None]
    grade: Mapped[str | None] = mapped_column(String(1))
    credit_line_fen: Mapped[int | None]
    # why the requested amount cannot all be approved: it is above the credit line in force (None: it is not)
    line_note: Mapped[str | None] = mapped_column(Text)
    overridden_at: Mapped[datetime | None]
    override_reason: Mapped[str | None] = mapped_column(Text)

    # the bank's decision
    decided_at: Mapped[datetime | None]
    decision_date: Mapped[date | None]
    approved_amount_fen: Mapped[int | None]
    approved_term_months: Mapped[int | None]
    approved_rate_pct: Mapped[Decimal | None] = mapped_column(Numeric(6, 4))
    rejection_reason: Mapped[str | None] = mapped_column(Text)

    bank: Mapped[Bank] = relationship(lazy="raise")
    enterprise: Mapped[Enterprise | None] = relationship(lazy="raise")

    @property
    def indicators(self) -> Indicators:
        return Indicators(
            invention_patents=self.invention_patents,
            utility_model_patents=self.utility_model_patents,
            software_copyrights=self.software_copyrights,
            rd_spending_fen=self.rd_spending_fen,
            revenue_fen=self.revenue_fen,
            rd_staff=self.rd_staff,
            total_staff=self.total_staff,
            senior_talent=self.senior_talent,
            high_tech_certificate=self.high_tech_certificate,
        )
