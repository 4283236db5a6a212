from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from loanfund.core.dates import IsoDate
from loanfund.core.money import NonNegativeYuan, YuanStr, yuan_str
from loanfund.loans.schemas import DaysPastDue, Ref
from loanfund.status_reports.models import Discrepancy, StatusReport


class StatusLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bank_loan_ref: Ref
    outstanding_principal: NonNegativeYuan
    days_past_due: DaysPastDue


class StatusReportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    month_end: IsoDate = Field(description="The last day of the month reported on")
    loans: Annotated[list[StatusLine], Field(max_length=100_000)]


class DiscrepancyRead(BaseModel):
    id: int
    report_id: int
    bank_id: int
    month_end: date
    loan_id: int | None
    bank_loan_ref: str
    kind: str = Field(
        description="balance_mismatch | missing_from_report | unknown_loan | not_open | update_refused"
    )
    reported_outstanding: YuanStr | None
    derived_outstanding: YuanStr | None
    reported_days_past_due: int | None

    @classmethod
    def of(cls, d: Discrepancy) -> DiscrepancyRead:
        return cls(
            id=d.id,
            report_id=d.report_id,
            bank_id=d.bank_id,
            month_end=d.month_end,
            loan_id=d.loan_id,
            bank_loan_ref=d.bank_loan_ref,
            kind=d.kind,
            reported_outstanding=None
            if d.reported_outstanding_fen is None
            else yuan_str(d.reported_outstanding_fen),
            derived_outstanding=None
            if d.derived_outstanding_fen is None
            else yuan_str(d.derived_outstanding_fen),
            reported_days_past_due=d.reported_days_past_due,
        )


class StatusReportRead(BaseModel):
    id: int
    bank_id: int
    month_end: date
    line_count: int
    discrepancy_count: int
    submitted_at: datetime

    @classmethod
    def of(cls, r: StatusReport) -> StatusReportRead:
        return cls(
            id=r.id,
            bank_id=r.bank_id,
            month_end=r.month_end,
            line_count=r.line_count,
            discrepancy_count=r.discrepancy_count,
            submitted_at=r.submitted_at,
        )


class StatusReportDetail(StatusReportRead):
    discrepancies: list[DiscrepancyRead]
