from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from loanfund.claims.models import Claim, ClaimState, Recovery, RecoveryKind
from loanfund.core.dates import IsoDate
from loanfund.core.money import NonNegativeYuan, PositiveYuan, YuanStr, yuan_str
from loanfund.core.params import MAX_ID
from loanfund.loans.schemas import Ref

Reason = Annotated[str, Field(min_length=3, max_length=2000)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClaimCreate(_In):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"loan_id": 1, "principal_at_default": "3000000.00"}]}
    )

    loan_id: int = Field(ge=1, le=MAX_ID, strict=True)
    principal_at_default: PositiveYuan = Field(
        description="Outstanding principal at default; interest is not compensated"
    )


class ClaimApproval(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"amount": "2000000.00", "reason": "Interest arrears part of the stated principal; reduced"}
            ]
        }
    )

    amount: PositiveYuan | None = Field(
        default=None, description="Reduce the claim to this amount (needs a reason)"
    )
    reason: Reason | None = None
    review_note: Reason | None = Field(
        default=None,
        description="The reviewer's note; required to approve an early default (`early_default: true`)",
    )


class ClaimRejection(_In):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "The loan was restructured before default; not covered"}]}
    )

    reason: Reason


class RecoveryCreate(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "bank_ref": "CCB-QJ-REC-0001",
                    "date": "2022-06-10",
                    "gross": "300000.00",
                    "costs": "20000.00",
                }
            ]
        }
    )

    bank_ref: Ref
    date: IsoDate
    gross: PositiveYuan
    costs: NonNegativeYuan = Field(default=Decimal(0))


class RemittanceCreate(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"bank_ref": "CCB-QJ-REM-0001", "date": "2022-06-20", "amount": "224000.00"}]
        }
    )

    bank_ref: Ref
    date: IsoDate
    amount: PositiveYuan


class CollectionClose(_In):
    model_config = ConfigDict(json_schema_extra={"examples": [{"date": "2022-06-30"}]})

    date: IsoDate


class RecoveryRead(BaseModel):
    id: int
    kind: RecoveryKind
    bank_ref: str
    date: IsoDate
    gross: YuanStr
    costs: YuanStr
    fund_share: YuanStr = Field(
        description="Recovery: the fund's share of the net; remittance: the amount remitted"
    )

    @classmethod
    def of(cls, r: Recovery) -> RecoveryRead:
        return cls(
            id=r.id,
            kind=r.kind,
            bank_ref=r.bank_ref,
            date=r.reported_on,
            gross=yuan_str(r.gross_fen),
            costs=yuan_str(r.costs_fen),
            fund_share=yuan_str(r.fund_share_fen),
        )


class ClaimRead(BaseModel):
    id: int
    bank_id: int
    loan_id: int
    state: ClaimState
    principal_at_default: YuanStr
    fund_share: str
    claimed: YuanStr
    approved: YuanStr | None
    reduction_reason: str | None
    reserved: YuanStr
    paid: YuanStr | None
    filed_on: dt.date
    reviewed_by: int | None
    reviewed_on: dt.date | None
    rejection_reason: str | None
    paid_by: int | None
    paid_on: dt.date | None
    collection_closed_on: dt.date | None
    receivable: YuanStr = Field(description="Recoveries owed to the fund and not yet remitted")
    early_default: bool = Field(
        description="The loan became non-performing within the early-default window of its first "
        "disbursement: approval needs a review note"
    )
    review_note: str | None = Field(description="The reviewer's note at approval")
    funded: bool | None = Field(
        description="An approved claim: whether the fund's cash is reserved for all of it (false: approved "
        "while the fund could not cover it; the payout needs the shortfall available). Paid: true. "
        "Submitted or rejected: null"
    )
    shortfall: YuanStr | None = Field(
        description="An approved claim: the part of the approved amount not reserved (0.00 when funded)"
    )

    @classmethod
    def of(cls, c: Claim, receivable_fen: int = 0) -> ClaimRead:
        funded, missing = c.funding()
        shortfall = None if missing is None else yuan_str(missing)
        return cls(
            id=c.id,
            bank_id=c.bank_id,
            loan_id=c.loan_id,
            state=c.state,
            principal_at_default=yuan_str(c.principal_fen),
            fund_share=f"{c.fund_share:.4f}",
            claimed=yuan_str(c.claimed_fen),
            approved=None if c.approved_fen is None else yuan_str(c.approved_fen),
            reduction_reason=c.reduction_reason,
            reserved=yuan_str(c.reserved_fen),
            paid=None if c.paid_fen is None else yuan_str(c.paid_fen),
            filed_on=c.filed_on,
            reviewed_by=c.reviewed_by,
            reviewed_on=c.reviewed_on,
            rejection_reason=c.rejection_reason,
            paid_by=c.paid_by,
            paid_on=c.paid_on,
            collection_closed_on=c.collection_closed_on,
            receivable=yuan_str(receivable_fen),
            early_default=c.early_default,
            review_note=c.review_note,
            funded=funded,
            shortfall=shortfall,
        )


class ClaimDetail(ClaimRead):
    recoveries: list[RecoveryRead]
