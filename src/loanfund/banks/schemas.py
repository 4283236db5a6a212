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
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": "CQRCB_QJ",
                    "name": "重庆农村商业银行黔江支行",
                    "fund_share": "0.80",
                    "lending_quota": "50000000.00",
                }
            ]
        },
    )

    code: BankCode
    name: Annotated[str, Field(min_length=1, max_length=200)]
    fund_share: FundShare | None = Field(default=None, description="Defaults to the programme's share (0.80)")
    lending_quota: PositiveYuan | None = None


class BankUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "重庆农村商业银行股份有限公司黔江支行", "lending_quota": "60000000.00"}]
        },
    )

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    fund_share: FundShare | None = None
    lending_quota: PositiveYuan | None = None
    clear_lending_quota: Annotated[bool, Field(strict=True)] = False
    allow_contracts_without_application: Annotated[bool, Field(strict=True)] | None = Field(
        default=None,
        description="Let the bank register contracts without an application (historical imports, "
        "checked against the enterprise's own grade's credit line); off for a new bank",
    )


class StatusChange(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "Cooperation agreement renewed on 2021-12-01"}]},
    )

    reason: Reason


class BankRead(BaseModel):
    id: int
    code: str
    name: str
    fund_share: str = Field(examples=["0.8000"])
    lending_quota: YuanStr | None
    status: BankStatus
    status_reason: str | None
    allow_contracts_without_application: bool
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
            allow_contracts_without_application=bank.allow_contracts_without_application,
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
