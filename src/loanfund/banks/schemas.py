from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from loanfund.banks.models import Bank, BankStatus
from loanfund.core.money import PositiveYuan, YuanStr, yuan_str

BankCode = Annotated[str, Field(pattern=r"^[A-Z0-9_]{2,32}$", examples=["QJRCB"])]
FundShare = Annotated[Decimal, Field(gt=0, le=1, max_digits=5, decimal_places=4, examples=["0.80"])]
Reason = Annotated[str, Field(min_length=3, max_length=2000)]


class BankCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: BankCode
    name: Annotated[str, Field(min_length=1, max_length=200)]
    fund_share: FundShare | None = Field(default=None, description="Defaults to the programme's share (0.80)")
    lending_quota: PositiveYuan | None = None


class BankUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    fund_share: FundShare | None = None
    lending_quota: PositiveYuan | None = None
    clear_lending_quota: bool = False


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class BankRead(BaseModel):
    id: int
    code: str
    name: str
    fund_share: str = Field(examples=["0.8000"])
    lending_quota: YuanStr | None
    status: BankStatus
    status_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, bank: Bank) -> BankRead:
        return cls(
            id=bank.id,
            code=bank.code,
            name=bank.name,
            fund_share=f"{bank.fund_share:.4f}",
            lending_quota=yuan_str(bank.lending_quota_fen) if bank.lending_quota_fen is not None else None,
            status=bank.status,
            status_reason=bank.status_reason,
            created_at=bank.created_at,
            updated_at=bank.updated_at,
        )


class PartnerBankRead(BaseModel):
    """A partner bank as anyone may see it: who it is and whether it takes applications."""

    code: str = Field(description="The code to name in an application (`bank_code`)")
    name: str
    accepting_applications: bool

    @classmethod
    def of(cls, bank: Bank) -> PartnerBankRead:
        return cls(code=bank.code, name=bank.name, accepting_applications=bank.status == BankStatus.active)
