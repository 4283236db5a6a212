from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any, Protocol

from sqlalchemy import (
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Numeric,
    String,
    Table,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from loanfund.core.db import Base, TimestampMixin, utcnow
from loanfund.loans.state import SNAPSHOT_FIELDS, Contract, EventKind, LoanState, Snapshot, snapshot_from


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
        Index("ix_loans_enterprise", "enterprise_id"),
        # only loans from an application, and only loans overdue (the aging report): most loans have no
        # entry in either, and no index holds a column that events change but days past due, so that
        # most updates find their row's new version a place on its page without touching an index
        Index(
            "uq_loans_application_id",
            "application_id",
            unique=True,
            postgresql_where=text("application_id IS NOT NULL"),
            sqlite_where=text("application_id IS NOT NULL"),
        ),
        Index(
            "ix_loans_overdue",
            "days_past_due",
            "bank_id",
            postgresql_where=text("days_past_due > 0"),
            sqlite_where=text("days_past_due > 0"),
        ),
        {"postgresql_with": {"fillfactor": 70}},  # room on each page for updated rows
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"))
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))
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
    early_default: Mapped[bool] = mapped_column(default=False, server_default=false())

    events: Mapped[list[LoanEvent]] = relationship(
        back_populates="loan", lazy="raise", order_by="LoanEvent.id", cascade="save-update, merge"
    )

    @property
    def contract(self) -> Contract:
        return Contract(self.contract_amount_fen, self.start_date, self.maturity_date)

    @property
    def snapshot(self) -> Snapshot:
        return snapshot_of(self)

    def set_snapshot(self, snap: Snapshot) -> None:
        set_snapshot(self, snap)


class LoanFields(Protocol):
    """What the loan rules read and change: a `Loan`, or a `LoanDraft` that a batch works on."""

    @property
    def id(self) -> int | None: ...

    bank_id: int
    enterprise_id: int
    application_id: int | None
    industry: str
    grade: str
    bank_loan_ref: str
    contract_amount_fen: int
    annual_rate_pct: Decimal
    start_date: date
    maturity_date: date
    state: LoanState
    disbursed_fen: int
    principal_repaid_fen: int
    interest_repaid_fen: int
    outstanding_fen: int
    days_past_due: int
    first_disbursed_on: date | None
    npl_since: date | None
    settled_on: date | None
    last_event_date: date | None
    early_default: bool

    @property
    def contract(self) -> Contract: ...

    @property
    def snapshot(self) -> Snapshot: ...

    def set_snapshot(self, snap: Snapshot) -> None: ...


_snapshot_values = attrgetter(*SNAPSHOT_FIELDS)


def snapshot_of(loan: LoanFields) -> Snapshot:
    return snapshot_from(_snapshot_values(loan))


def set_snapshot(loan: LoanFields, snap: Snapshot) -> None:
    loan.state = snap.state
    loan.disbursed_fen = snap.disbursed_fen
    loan.principal_repaid_fen = snap.principal_repaid_fen
    loan.interest_repaid_fen = snap.interest_repaid_fen
    loan.outstanding_fen = snap.outstanding_fen
    loan.days_past_due = snap.days_past_due
    loan.first_disbursed_on = snap.first_disbursed_on
    loan.npl_since = snap.npl_since
    loan.settled_on = snap.settled_on
    loan.last_event_date = snap.last_event_date
    loan.early_default = snap.early_default


# the columns `set_snapshot` changes
SNAPSHOT_COLUMNS = (
    "state",
    "disbursed_fen",
    "principal_repaid_fen",
    "interest_repaid_fen",
    "outstanding_fen",
    "days_past_due",
    "first_disbursed_on",
    "npl_since",
    "settled_on",
    "last_event_date",
    "early_default",
)


@dataclass(slots=True)
class LoanDraft:
    """A loan row as a plain object: what a bulk submission reads, checks and changes in memory before
    writing all its rows at once (`loans.batch`). Same fields and snapshot as `Loan`, without the cost
    of an ORM object per loan."""

    id: int | None
    bank_id: int
    enterprise_id: int
    application_id: int | None
    bank_loan_ref: str
    industry: str
    grade: str
    contract_amount_fen: int
    annual_rate_pct: Decimal
    start_date: date
    maturity_date: date
    state: LoanState = LoanState.approved
    disbursed_fen: int = 0
    principal_repaid_fen: int = 0
    interest_repaid_fen: int = 0
    outstanding_fen: int = 0
    days_past_due: int = 0
    first_disbursed_on: date | None = None
    npl_since: date | None = None
    settled_on: date | None = None
    last_event_date: date | None = None
    compensated_on: date | None = None
    written_off_on: date | None = None
    early_default: bool = False

    @property
    def contract(self) -> Contract:
        return Contract(self.contract_amount_fen, self.start_date, self.maturity_date)

    @property
    def snapshot(self) -> Snapshot:
        return snapshot_of(self)

    def set_snapshot(self, snap: Snapshot) -> None:
        set_snapshot(self, snap)

    def row(self) -> dict[str, Any]:
        """The `loans` row to insert (without the id)."""
        return dict(zip(_ROW_COLUMNS, _row_values(self), strict=True))

    def snapshot_row(self, **also: Any) -> dict[str, Any]:
        """What to update on the stored row after its snapshot changed (and `also`)."""
        row = dict(zip(_SNAPSHOT_ROW, _snapshot_row_values(self), strict=True))
        row.update(also)
        return row


DRAFT_COLUMNS = tuple(f.name for f in fields(LoanDraft))
_ROW_COLUMNS = tuple(c for c in DRAFT_COLUMNS if c != "id")
_row_values = attrgetter(*_ROW_COLUMNS)
_SNAPSHOT_ROW = ("id", *SNAPSHOT_COLUMNS)
_snapshot_row_values = attrgetter(*_SNAPSHOT_ROW)


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


# the tables, for the Core statements of the bulk paths
LOANS: Table = Loan.__table__  # type: ignore[assignment]
EVENTS: Table = LoanEvent.__table__  # type: ignore[assignment]
