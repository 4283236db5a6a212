from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loanfund.core.dates import IsoDate
from loanfund.enterprises.credit_code import ALPHABET
from loanfund.enterprises.models import Enterprise

CREDIT_CODE_PATTERN = rf"^[{ALPHABET}]{{2}}[0-9]{{6}}[{ALPHABET}]{{10}}$"
CreditCode = Annotated[
    str,
    Field(
        min_length=18,
        max_length=18,
        pattern=CREDIT_CODE_PATTERN,
        description="Unified social credit code: 18 characters, no I, O, S, V or Z",
        examples=["91500114MA5U0XYZ1A"],
    ),
]
Industry = Annotated[str, Field(pattern=r"^[A-T]$", description="GB/T 4754 section letter", examples=["C"])]
RegionCode = Annotated[str, Field(pattern=r"^[0-9]{6}$", examples=["500114"])]
ShortText = Annotated[str, Field(min_length=1, max_length=64)]


class EnterpriseFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    region_code: RegionCode | None = Field(default=None, description="Defaults to positions 3–8 of the code")
    industry: Industry
    tech_reg_no: ShortText | None = Field(default=None, description="Tech-enterprise registration number")
    tech_reg_date: IsoDate | None = None
    high_tech_cert_no: ShortText | None = None
    high_tech_cert_expiry: IsoDate | None = None
    headcount: Annotated[int, Field(ge=0, le=10_000_000)] | None = None

    @model_validator(mode="after")
    def _pairs(self) -> EnterpriseFields:
        if (self.high_tech_cert_no is None) != (self.high_tech_cert_expiry is None):
            raise ValueError("high_tech_cert_no and high_tech_cert_expiry go together")
        if self.tech_reg_date is not None and self.tech_reg_no is None:
            raise ValueError("tech_reg_date needs tech_reg_no")
        return self


class EnterpriseCreate(EnterpriseFields):
    credit_code: CreditCode
    checksum_override_reason: Annotated[str, Field(min_length=3, max_length=2000)] | None = Field(
        default=None,
        description="Accept a code whose check character fails (some genuine early codes do); audited",
    )

    @field_validator("credit_code", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.strip().upper() if isinstance(v, str) else v


class EnterpriseUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    industry: Industry | None = None
    tech_reg_no: ShortText | None = None
    tech_reg_date: IsoDate | None = None
    high_tech_cert_no: ShortText | None = None
    high_tech_cert_expiry: IsoDate | None = None
    headcount: Annotated[int, Field(ge=0, le=10_000_000)] | None = None


class EnterpriseRead(BaseModel):
    id: int
    credit_code: str
    name: str
    region_code: str
    industry: str
    tech_reg_no: str | None
    tech_reg_date: date | None
    high_tech_cert_no: str | None
    high_tech_cert_expiry: date | None
    headcount: int | None
    registered_tech: bool
    checksum_override: bool
    checksum_override_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, e: Enterprise) -> EnterpriseRead:
        return cls(
            id=e.id,
            credit_code=e.credit_code,
            name=e.name,
            region_code=e.region_code,
            industry=e.industry,
            tech_reg_no=e.tech_reg_no,
            tech_reg_date=e.tech_reg_date,
            high_tech_cert_no=e.high_tech_cert_no,
            high_tech_cert_expiry=e.high_tech_cert_expiry,
            headcount=e.headcount,
            registered_tech=e.is_registered_tech,
            checksum_override=e.checksum_override,
            checksum_override_reason=e.checksum_override_reason,
            created_at=e.created_at,
            updated_at=e.updated_at,
        )


class ImportRowError(BaseModel):
    line: int
    field: str | None
    message: str


class ImportResult(BaseModel):
    imported: int
