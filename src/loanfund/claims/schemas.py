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
    loan_id: int = Field(ge=1, le=MAX_ID, strict=True)
    principal_at_default: PositiveYuan = Field(
        description="Outstanding principal at default; interest is not compensated"
    )


class ClaimApproval(_In):
    amount: PositiveYuan | None = Field(
        default=None, description="Reduce the claim to this amount (needs a reason)"
    )
    reason: Reason | None = None


class ClaimRejection(_In):
    reason: Reason


class RecoveryCreate(_In):
    bank_ref: Ref
    date: IsoDate
    gross: PositiveYuan
    costs: NonNegativeYuan = Field(default=Decimal(0))


class RemittanceCreate(_In):
    bank_ref: Ref
    date: IsoDate
    amount: PositiveYuan


class CollectionClose(_In):
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

    @classmethod
    def of(cls, c: Claim, receivable_fen: int = 0) -> ClaimRead:
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
        )


class ClaimDetail(ClaimRead):
    recoveries: list[RecoveryRead]
