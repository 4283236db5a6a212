from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Enum, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from loanfund.core.db import Base, TimestampMixin, utcnow
from loanfund.loans.state import Contract, EventKind, LoanState, Snapshot


class Loan(TimestampMixin, Base):
    """A knowledge-value credit loan contract. Balances and state are derived from its events and kept
    here, in the same transaction, so that lists and reports never replay events."""

    __tablename__ = "loans"
    __table_args__ = (
        UniqueConstraint("bank_id", "bank_loan_ref", name="uq_loans_bank_ref"),
        CheckConstraint("contract_amount_fen > 0", name="amount_positive"),
        CheckConstraint("maturity_date > start_date", name="maturity_after_start"),
        CheckConstraint(
            "disbursed_fen >= 0 AND disbursed_fen <= contract_amount_fen", name="disbursed_range"
        ),
        CheckConstraint(
            "principal_repaid_fen >= 0 AND principal_repaid_fen <= disbursed_fen", name="repaid_range"
        ),
        Index("ix_loans_bank_state", "bank_id", "state"),
        Index("ix_loans_state_dpd", "state", "days_past_due"),  # programme-wide aging report
        Index("ix_loans_enterprise", "enterprise_id"),
        Index("ix_loans_first_disbursed_on", "first_disbursed_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"))
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"), unique=True)
    bank_loan_ref: Mapped[str] = mapped_column(String(64))
    industry: Mapped[str] = mapped_column(String(1))  # the enterprise's GB/T 4754 section when contracted
    grade: Mapped[str] = mapped_column(String(1), default="U")  # A–E from the application; U = unrated
    contract_amount_fen: Mapped[int]
    annual_rate_pct: Mapped[Decimal] = mapped_column(Numeric(6, 4))
    start_date: Mapped[date]
    maturity_date: Mapped[date]
    state: Mapped[LoanState] = mapped_column(
        Enum(LoanState, native_enum=False, length=16, validate_strings=True), default=LoanState.approved
    )
    disbursed_fen: Mapped[int] = mapped_column(default=0)
    principal_repaid_fen: Mapped[int] = mapped_column(default=0)
    interest_repaid_fen: Mapped[int] = mapped_column(default=0)
    outstanding_fen: Mapped[int] = mapped_column(default=0)
    days_past_due: Mapped[int] = mapped_column(default=0)
    first_disbursed_on: Mapped[date | None]
    npl_since: Mapped[date | None]
    settled_on: Mapped[date | None]
    last_event_date: Mapped[date | None]
    compensated_on: Mapped[date | None]
    written_off_on: Mapped[date | None]

    events: Mapped[list[LoanEvent]] = relationship(
        back_populates="loan", lazy="raise", order_by="LoanEvent.id", cascade="save-update, merge"
    )

    @property
    def contract(self) -> Contract:
        return Contract(self.contract_amount_fen, self.start_date, self.maturity_date)

    @property
    def snapshot(self) -> Snapshot:
        return Snapshot(
            state=self.state,
            disbursed_fen=self.disbursed_fen,
            principal_repaid_fen=self.principal_repaid_fen,
            interest_repaid_fen=self.interest_repaid_fen,
            days_past_due=self.days_past_due,
            first_disbursed_on=self.first_disbursed_on,
            npl_since=self.npl_since,
            settled_on=self.settled_on,
            last_event_date=self.last_event_date,
        )

    def set_snapshot(self, snap: Snapshot) -> None:
        self.state = snap.state
        self.disbursed_fen = snap.disbursed_fen
        self.principal_repaid_fen = snap.principal_repaid_fen
        self.interest_repaid_fen = snap.interest_repaid_fen
        self.outstanding_fen = snap.outstanding_fen
        self.days_past_due = snap.days_past_due
        self.first_disbursed_on = snap.first_disbursed_on
        self.npl_since = snap.npl_since
        self.settled_on = snap.settled_on
        self.last_event_date = snap.last_event_date


class LoanEvent(Base):
    """What a bank reported about a loan: a disbursement, a repayment or its days past due. Immutable."""

    __tablename__ = "loan_events"
    __table_args__ = (
        UniqueConstraint("bank_id", "bank_event_ref", name="uq_loan_events_bank_ref"),
        CheckConstraint("principal_fen >= 0 AND interest_fen >= 0", name="amounts_nonneg"),
        Index("ix_loan_events_loan_date", "loan_id", "event_date"),
        Index("ix_loan_events_date_kind", "event_date", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    bank_event_ref: Mapped[str] = mapped_column(String(64))
    kind: Mapped[EventKind] = mapped_column(
        Enum(EventKind, native_enum=False, length=16, validate_strings=True)
    )
    event_date: Mapped[date]
    principal_fen: Mapped[int] = mapped_column(default=0)
    interest_fen: Mapped[int] = mapped_column(default=0)
    days_past_due: Mapped[int | None]
    source: Mapped[str] = mapped_column(String(16), default="api")  # api | batch | status_report
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    loan: Mapped[Loan] = relationship(back_populates="events", lazy="raise")
