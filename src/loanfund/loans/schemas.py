from __future__ import annotations

import datetime as dt
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from loanfund.core.dates import IsoDate
from loanfund.core.money import NonNegativeYuan, PositiveYuan, YuanStr, yuan_str
from loanfund.enterprises.schemas import CreditCode
from loanfund.loans.models import Loan, LoanEvent, LoanFields
from loanfund.loans.state import EventKind, LoanState, Snapshot

if TYPE_CHECKING:
    from loanfund.loans.writes import Done

REF_PATTERN = r"^[A-Za-z0-9._:/-]{1,64}$"
Ref = Annotated[str, Field(min_length=1, max_length=64, pattern=REF_PATTERN, examples=["CCB-2021-0001"])]
RatePct = Annotated[
    Decimal,
    Field(
        gt=0, lt=100, max_digits=6, decimal_places=4, description="Annual rate, percent", examples=["4.35"]
    ),
]
DaysPastDue = Annotated[int, Field(ge=0, le=36_500, strict=True)]  # strict: `true` is not a number


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoanCreate(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "bank_loan_ref": "CCB-QJ-2021-0001",
                    "credit_code": "91500114MA60L8QX2W",
                    "amount": "1000000.00",
                    "annual_rate_pct": "4.35",
                    "start_date": "2021-03-01",
                    "maturity_date": "2022-02-28",
                }
            ]
        }
    )

    bank_loan_ref: Ref = Field(description="The bank's own contract reference, unique per bank")
    credit_code: CreditCode
    application_no: Annotated[str, Field(min_length=1, max_length=32)] | None = Field(
        default=None,
        description="The approved application this contract comes from; omit for historical data",
    )
    amount: PositiveYuan
    annual_rate_pct: RatePct
    start_date: IsoDate
    maturity_date: IsoDate


class DisbursementCreate(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"bank_event_ref": "CCB-QJ-2021-0001-D1", "date": "2021-07-15", "amount": "500000.00"}
            ]
        }
    )

    bank_event_ref: Ref
    date: IsoDate
    amount: PositiveYuan


class RepaymentCreate(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "bank_event_ref": "CCB-QJ-2021-0001-R07",
                    "date": "2021-07-20",
                    "principal": "100000.00",
                    "interest": "3625.00",
                }
            ]
        }
    )

    bank_event_ref: Ref
    date: IsoDate
    principal: NonNegativeYuan = Decimal(0)
    interest: NonNegativeYuan = Decimal(0)


class DelinquencyCreate(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"bank_event_ref": "CCB-QJ-2021-0001-Q07", "date": "2021-07-31", "days_past_due": 30}
            ]
        }
    )

    bank_event_ref: Ref
    date: IsoDate = Field(description="The date the days past due are reported as of")
    days_past_due: DaysPastDue


class EventRead(BaseModel):
    id: int
    kind: EventKind
    bank_event_ref: str
    date: dt.date
    principal: YuanStr
    interest: YuanStr
    days_past_due: int | None
    source: str
    created_at: datetime

    @classmethod
    def of(cls, e: LoanEvent) -> EventRead:
        return cls(
            id=e.id,
            kind=e.kind,
            bank_event_ref=e.bank_event_ref,
            date=e.event_date,
            principal=yuan_str(e.principal_fen),
            interest=yuan_str(e.interest_fen),
            days_past_due=e.days_past_due,
            source=e.source,
            created_at=e.created_at,
        )


class LoanRead(BaseModel):
    id: int
    bank_id: int
    bank_loan_ref: str
    credit_code: str
    application_id: int | None
    amount: YuanStr
    annual_rate_pct: str
    start_date: date
    maturity_date: date
    state: LoanState
    disbursed: YuanStr
    principal_repaid: YuanStr
    interest_repaid: YuanStr
    outstanding_principal: YuanStr
    days_past_due: int
    first_disbursed_on: date | None
    npl_since: date | None
    settled_on: date | None
    early_default: bool = Field(
        description="Became non-performing within the early-default window of its first disbursement; "
        "its claim needs an officer's review note"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, loan: Loan, credit_code: str) -> LoanRead:
        return cls.of_snapshot(loan, loan.snapshot, credit_code, loan.created_at, loan.updated_at)

    @classmethod
    def of_done(cls, done: Done) -> LoanRead:
        """The loan as the write path left it just after the item `done` (later items of the same
        transaction may have changed the draft since)."""
        return cls.of_snapshot(done.loan, done.snapshot, done.credit_code, done.created_at, done.at)

    @classmethod
    def of_snapshot(
        cls, loan: LoanFields, snap: Snapshot, credit_code: str, created_at: datetime, updated_at: datetime
    ) -> LoanRead:
        """The contract's fields from `loan`, its balances and state from `snap`."""
        assert loan.id is not None
        return cls(
            id=loan.id,
            bank_id=loan.bank_id,
            bank_loan_ref=loan.bank_loan_ref,
            credit_code=credit_code,
            application_id=loan.application_id,
            amount=yuan_str(loan.contract_amount_fen),
            annual_rate_pct=f"{loan.annual_rate_pct:.4f}",
            start_date=loan.start_date,
            maturity_date=loan.maturity_date,
            state=snap.state,
            disbursed=yuan_str(snap.disbursed_fen),
            principal_repaid=yuan_str(snap.principal_repaid_fen),
            interest_repaid=yuan_str(snap.interest_repaid_fen),
            outstanding_principal=yuan_str(snap.outstanding_fen),
            days_past_due=snap.days_past_due,
            first_disbursed_on=snap.first_disbursed_on,
            npl_since=snap.npl_since,
            settled_on=snap.settled_on,
            early_default=snap.early_default,
            created_at=created_at,
            updated_at=updated_at,
        )


class LoanDetail(LoanRead):
    events: list[EventRead]


class EventResult(BaseModel):
    """The event as stored and the loan after it."""

    event: EventRead
    loan: LoanRead

    @classmethod
    def of_done(cls, done: Done) -> EventResult:
        """An event the write path accepted, and its loan after it."""
        row = done.event
        assert row is not None
        event = EventRead(
            id=row["id"],
            kind=row["kind"],
            bank_event_ref=row["bank_event_ref"],
            date=row["event_date"],
            principal=yuan_str(row["principal_fen"]),
            interest=yuan_str(row["interest_fen"]),
            days_past_due=row["days_past_due"],
            source=row["source"],
            created_at=done.at,
        )
        return cls(event=event, loan=LoanRead.of_done(done))


# --- batch -------------------------------------------------------------------------------------------


class BatchContract(LoanCreate):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "contract",
                    "bank_loan_ref": "CCB-QJ-2021-0002",
                    "credit_code": "91500114MA60L8QX2W",
                    "amount": "800000.00",
                    "annual_rate_pct": "4.35",
                    "start_date": "2021-07-01",
                    "maturity_date": "2022-06-30",
                }
            ]
        }
    )

    type: Literal["contract"]


class BatchDisbursement(DisbursementCreate):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "disbursement",
                    "bank_loan_ref": "CCB-QJ-2021-0002",
                    "bank_event_ref": "CCB-QJ-2021-0002-D1",
                    "date": "2021-07-16",
                    "amount": "800000.00",
                }
            ]
        }
    )

    type: Literal["disbursement"]
    bank_loan_ref: Ref


class BatchRepayment(RepaymentCreate):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "repayment",
                    "bank_loan_ref": "CCB-QJ-2021-0002",
                    "bank_event_ref": "CCB-QJ-2021-0002-R08",
                    "date": "2021-08-16",
                    "principal": "0.00",
                    "interest": "2900.00",
                }
            ]
        }
    )

    type: Literal["repayment"]
    bank_loan_ref: Ref


class BatchDelinquency(DelinquencyCreate):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "delinquency",
                    "bank_loan_ref": "CCB-QJ-2021-0002",
                    "bank_event_ref": "CCB-QJ-2021-0002-Q09",
                    "date": "2021-09-30",
                    "days_past_due": 14,
                }
            ]
        }
    )

    type: Literal["delinquency"]
    bank_loan_ref: Ref


BatchItem = Annotated[
    BatchContract | BatchDisbursement | BatchRepayment | BatchDelinquency, Field(discriminator="type")
]


class BatchCreate(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "type": "contract",
                            "bank_loan_ref": "CCB-QJ-2021-0002",
                            "credit_code": "91500114MA60L8QX2W",
                            "amount": "800000.00",
                            "annual_rate_pct": "4.35",
                            "start_date": "2021-07-01",
                            "maturity_date": "2022-06-30",
                        },
                        {
                            "type": "disbursement",
                            "bank_loan_ref": "CCB-QJ-2021-0002",
                            "bank_event_ref": "CCB-QJ-2021-0002-D1",
                            "date": "2021-07-16",
                            "amount": "800000.00",
                        },
                    ]
                }
            ]
        }
    )

    items: list[BatchItem] = Field(min_length=1, description="Contracts and events, applied in order")


class BatchResult(BaseModel):
    contracts: int
    events: int
    loan_ids: list[int] = Field(description="Id of the loan each item created or touched, by index")
