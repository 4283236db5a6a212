from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from loanfund.core.dates import IsoDate
from loanfund.core.money import PositiveYuan, YuanStr

RatePct = Annotated[Decimal, Field(gt=0, lt=100, max_digits=6, decimal_places=4, examples=["3.85"])]


class LprCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"effective_date": "2026-01-20", "rate_pct": "3.00", "kind": "lpr"}]},
    )

    effective_date: IsoDate
    rate_pct: RatePct
    kind: Literal["lpr", "benchmark"] = "lpr"


class LprRead(BaseModel):
    effective_date: date
    rate_pct: str = Field(examples=["3.8500"])
    kind: str


class CreditLineTableCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "effective_date": "2026-01-01",
                    "lines": {
                        "A": "5000000.00",
                        "B": "4000000.00",
                        "C": "3000000.00",
                        "D": "1600000.00",
                        "E": "800000.00",
                    },
                }
            ]
        },
    )

    effective_date: IsoDate
    lines: dict[Literal["A", "B", "C", "D", "E"], PositiveYuan]


class CreditLineTableRead(BaseModel):
    effective_date: date
    lines: dict[str, YuanStr]
