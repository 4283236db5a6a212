from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from loanfund.banks.schemas import Reason
from loanfund.core.dates import IsoDate
from loanfund.core.money import NonNegativeYuan, YuanStr, yuan_str
from loanfund.core.params import MAX_ID
from loanfund.loans.schemas import DaysPastDue, Ref
from loanfund.status_reports.models import Discrepancy, MonthReopening, StatusReport


class StatusLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bank_loan_ref: Ref
    outstanding_principal: NonNegativeYuan
    days_past_due: DaysPastDue


class StatusReportCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "month_end": "2021-07-31",
                    "loans": [
                        {
                            "bank_loan_ref": "CCB-QJ-2021-0001",
                            "outstanding_principal": "1000000.00",
                            "days_past_due": 0,
                        }
                    ],
                }
            ]
        },
    )

    month_end: IsoDate = Field(description="The last day of the month reported on")
    loans: Annotated[list[StatusLine], Field(max_length=100_000)]


class StatusReportAmendment(StatusReportCreate):
    """A closed month reported again: the month's next version."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "month_end": "2021-06-30",
                    "reason": "A repayment of 2021-06-28 was posted late",
                    "loans": [
                        {
                            "bank_loan_ref": "CCB-QJ-2021-0001",
                            "outstanding_principal": "900000.00",
                            "days_past_due": 0,
                        }
                    ],
                }
            ]
        }
    )

    reason: Reason = Field(description="Why the month is reported again")


class ReopeningCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "bank_id": 1,
                    "month_end": "2021-06-30",
                    "reason": "The bank's June repayment file arrived after its report",
                }
            ]
        },
    )

    bank_id: int = Field(ge=1, le=MAX_ID, strict=True)
    month_end: IsoDate = Field(description="The closed month to reopen (its last day)")
    reason: Reason


class ReopeningRead(BaseModel):
    id: int
    bank_id: int
    month_end: date
    reason: str
    reopened_by: int = Field(description="The officer's staff id")
    reopened_at: datetime
    open: bool = Field(description="Events from this month on are accepted until the amended report")
    closed_by_report_id: int | None = Field(description="The amended report that closed the month again")
    closed_at: datetime | None

    @classmethod
    def of(cls, r: MonthReopening) -> ReopeningRead:
        return cls(
            id=r.id,
            bank_id=r.bank_id,
            month_end=r.month_end,
            reason=r.reason,
            reopened_by=r.reopened_by,
            reopened_at=r.reopened_at,
            open=r.closed_at is None,
            closed_by_report_id=r.closed_by_report_id,
            closed_at=r.closed_at,
        )


class DiscrepancyRead(BaseModel):
    id: int
    report_id: int
    report_version: int = Field(description="The version of the month's report that found it")
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
    def of(cls, d: Discrepancy, report_version: int) -> DiscrepancyRead:
        return cls(
            id=d.id,
            report_id=d.report_id,
            report_version=report_version,
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
    version: int = Field(description="1 for the month's report; 2, 3... for its amendments")
    amends_report_id: int | None = Field(description="The version this one amends")
    reason: str | None = Field(description="Why the month was reported again (amendments)")
    line_count: int
    discrepancy_count: int
    submitted_at: datetime

    @classmethod
    def of(cls, r: StatusReport) -> StatusReportRead:
        return cls(
            id=r.id,
            bank_id=r.bank_id,
            month_end=r.month_end,
            version=r.version,
            amends_report_id=r.amends_id,
            reason=r.reason,
            line_count=r.line_count,
            discrepancy_count=r.discrepancy_count,
            submitted_at=r.submitted_at,
        )


class StatusReportDetail(StatusReportRead):
    discrepancies: list[DiscrepancyRead]
