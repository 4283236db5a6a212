"""The API shapes of the stress test and the bank ratings. Amounts are yuan strings with two places;
probabilities are decimal strings with six places (ratios of the ratings four); a stored run's inputs,
calibration and outputs are kept in these shapes, so a run reads back exactly as it was answered."""

from __future__ import annotations

import enum
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from loanfund.core.dates import IsoDate
from loanfund.core.money import YuanStr

Grade = Literal["A", "B", "C", "D", "E", "U"]
ProbabilityIn = Annotated[
    Decimal, Field(ge=0, le=1, max_digits=7, decimal_places=6, allow_inf_nan=False, examples=["0.02"])
]
ProbabilityStr = Annotated[str, Field(pattern=r"^[01]\.\d{6}$", examples=["0.012345"])]
FactorStr = Annotated[str, Field(pattern=r"^\d+\.\d{4}$", examples=["0.1500"])]
MONTH_PATTERN = r"^(19|20|21)\d{2}-(0[1-9]|1[0-2])$"
MonthStr = Annotated[str, Field(pattern=MONTH_PATTERN, examples=["2021-06"])]


def parse_month(text: str) -> date:
    """'YYYY-MM' → the month's first day."""
    if not re.fullmatch(MONTH_PATTERN, text):
        raise ValueError("must be a month written YYYY-MM")
    return date(int(text[:4]), int(text[5:7]), 1)


# --- stress test: what is asked ---------------------------------------------------------------------


class Preset(enum.StrEnum):
    """Named scenarios a bureau asks about; a request's own fields override the preset's."""

    baseline = "baseline"
    pds_doubled = "pds_doubled"
    correlation_030 = "correlation_030"
    largest_bank_defaults = "largest_bank_defaults"


PRESET_DESCRIPTION = (
    "`baseline`: the calibrated model as it stands; `pds_doubled`: every probability of default × 2 "
    "(`pd_multiplier` 2); `correlation_030`: correlation 0.30; `largest_bank_defaults`: every covered "
    "loan of the bank with the most covered outstanding defaults (a deterministic shock, "
    "`all_default_banks`). Fields given in the request override the preset's."
)


class StressTestCreate(BaseModel):
    """A stress test to run. Every field may be left out: the preset's value, or the default, is used,
    and the answer's `inputs` say which values were."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"preset": "baseline"},
                {"preset": "pds_doubled", "as_of": "2021-12-31", "scenarios": 10000, "seed": 7},
                {
                    "name": "Correlation 0.25, grade U at 5%",
                    "as_of": "2021-12-31",
                    "horizon_months": 12,
                    "scenarios": 20000,
                    "seed": 1,
                    "correlation": "0.25",
                    "pd_by_grade": {"U": "0.05"},
                    "lgd": "0.9",
                },
            ]
        },
    )

    preset: Preset = Field(default=Preset.baseline, description=PRESET_DESCRIPTION)
    name: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")] | None = Field(
        default=None, description="Default: the preset's name and the date"
    )
    as_of: IsoDate | None = Field(
        default=None, description="The book and the fund at the end of this business date; default today"
    )
    # strict: a JSON `true` is not a number
    horizon_months: int = Field(default=12, ge=1, le=24, strict=True, description="Months ahead")
    scenarios: int = Field(
        default=10_000, ge=100, le=100_000, strict=True, description="Monte Carlo scenarios"
    )
    seed: int = Field(
        default=1, ge=0, le=2**32 - 1, strict=True, description="Same seed + same inputs → same results"
    )
    correlation: Annotated[
        Decimal, Field(ge=0, le=Decimal("0.99"), max_digits=5, decimal_places=4, allow_inf_nan=False)
    ] = Field(default=Decimal("0.15"), description="Asset correlation with the one systematic factor")
    pd_by_grade: dict[Grade, ProbabilityIn] | None = Field(
        default=None,
        description="Probability of default over a loan's life (≤ 1 year) per grade A–E, U = unrated; "
        "grades left out are calibrated from the programme's history",
    )
    pd_multiplier: Annotated[
        Decimal, Field(gt=0, le=100, max_digits=7, decimal_places=4, allow_inf_nan=False)
    ] = Field(default=Decimal(1), description="Every PD is multiplied by this (capped at 1)")
    lgd: ProbabilityIn | None = Field(
        default=None, description="Loss given default after recoveries; default: calibrated from paid claims"
    )
    all_default_banks: Annotated[
        list[Annotated[int, Field(ge=1, le=2**63 - 1, strict=True)]], Field(max_length=100)
    ] = Field(default_factory=list, description="Banks (ids) whose covered loans all default")

    @field_validator("all_default_banks")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        return sorted(set(value))


# --- stress test: what was used ----------------------------------------------------------------------


class StressTestInputs(BaseModel):
    """Every value the run used. Sent back as a request (with the same database), it gives the same
    results."""

    preset: Preset
    name: str
    as_of: date
    horizon_months: int
    scenarios: int
    seed: int
    correlation: FactorStr
    pd_by_grade: dict[Grade, ProbabilityStr] = Field(
        description="Each grade's PD before `pd_multiplier` (given, or calibrated)"
    )
    pd_multiplier: FactorStr
    lgd: ProbabilityStr
    all_default_banks: list[int]


class GradeCalibration(BaseModel):
    pd: ProbabilityStr = Field(description="The grade's PD before the multiplier")
    pd_used: ProbabilityStr = Field(description="× pd_multiplier, at most 1: what the simulation used")
    source: Literal["input", "observed", "pooled", "floor"] = Field(
        description="`observed`: the grade's own default rate; `pooled`: too few observed loans, the "
        "programme's rate; `floor`: the rate was below `stress_pd_floor`; `input`: given in the request"
    )
    observed_loans: int = Field(description="Loans whose lives are over (or that defaulted) by `as_of`")
    defaulted_loans: int
    observed_rate: ProbabilityStr | None


class LgdCalibration(BaseModel):
    lgd: ProbabilityStr
    source: Literal["input", "observed", "floor", "no_history"]
    paid_claims: int
    paid: YuanStr = Field(description="The fund's payouts on claims paid by `as_of`")
    recovered: YuanStr = Field(description="The fund's share of the recoveries reported on them")
    observed: ProbabilityStr | None = Field(description="1 − recovered ÷ paid")


class StressCalibration(BaseModel):
    pd_by_grade: dict[Grade, GradeCalibration]
    lgd: LgdCalibration
    excluded_loans: int = Field(
        description="Non-performing loans whose claim already has cash reserved: left out, as the "
        "reservation already stands against them"
    )
    excluded_outstanding: YuanStr


# --- stress test: what it found ---------------------------------------------------------------------


class BankStress(BaseModel):
    bank_id: int
    bank_code: str
    covered_outstanding: YuanStr
    loans: int
    expected_loss: YuanStr
    var_99_contribution: YuanStr = Field(
        description="The bank's share of VaR 99: its mean loss in the scenarios around the 99th "
        "percentile of the fund's loss, scaled so that the banks' shares add up to VaR 99"
    )
    p_bank_breaker: ProbabilityStr = Field(
        description="Probability that the bank's NPL ratio reaches `breaker_suspend_ratio` within the "
        "horizon (its book held as it stands)"
    )


class HistogramBin(BaseModel):
    lower: YuanStr
    upper: YuanStr = Field(description="Inclusive for the last bin, exclusive otherwise")
    scenarios: int
    probability: ProbabilityStr


class FanPoint(BaseModel):
    month: int = Field(ge=1, description="Month of the horizon")
    end: date = Field(description="`as_of` plus this many months")
    p05: YuanStr = Field(description="5th percentile of the fund's available balance at the month's end")
    p50: YuanStr
    p95: YuanStr


class StressOutputs(BaseModel):
    covered_outstanding: YuanStr = Field(description="Outstanding principal of every covered loan")
    covered_loans: int
    simulated_outstanding: YuanStr = Field(description="Covered outstanding less `excluded_outstanding`")
    available_balance: YuanStr = Field(description="The fund's cash less reservations, at `as_of`")
    fund_size: YuanStr
    expected_loss: YuanStr = Field(description="Mean loss to the fund over the horizon")
    expected_loss_standard_error: YuanStr = Field(description="Monte Carlo error of `expected_loss`")
    var_95: YuanStr = Field(description="Loss not exceeded in 95% of scenarios")
    var_99: YuanStr
    expected_shortfall_99: YuanStr = Field(description="Mean loss of the worst 1% of scenarios")
    p_exhaustion: ProbabilityStr = Field(
        description="Probability that the loss exceeds the available balance"
    )
    p_programme_breaker: ProbabilityStr = Field(
        description="Probability that payouts reach `annual_compensation_stop_ratio` × fund size"
    )
    by_bank: list[BankStress]
    loss_histogram: list[HistogramBin]
    balance_fan: list[FanPoint]


_RUN_EXAMPLE: dict[str, Any] = {
    "id": 12,
    "name": "PDs doubled, 2021-12-31",
    "preset": "pds_doubled",
    "created_at": "2026-12-06T08:30:00Z",
    "created_by": "staff:王分析",
    "duration_ms": 420,
    "inputs": {
        "preset": "pds_doubled",
        "name": "PDs doubled, 2021-12-31",
        "as_of": "2021-12-31",
        "horizon_months": 12,
        "scenarios": 10000,
        "seed": 1,
        "correlation": "0.1500",
        "pd_by_grade": {g: "0.032000" for g in "ABCDEU"},
        "pd_multiplier": "2.0000",
        "lgd": "0.870000",
        "all_default_banks": [],
    },
    "calibration": {
        "pd_by_grade": {
            g: {
                "pd": "0.032000",
                "pd_used": "0.064000",
                "source": "pooled" if g != "U" else "observed",
                "observed_loans": 3 if g != "U" else 122,
                "defaulted_loans": 0 if g != "U" else 4,
                "observed_rate": "0.000000" if g != "U" else "0.032787",
            }
            for g in "ABCDEU"
        },
        "lgd": {
            "lgd": "0.870000",
            "source": "observed",
            "paid_claims": 5,
            "paid": "1200000.00",
            "recovered": "156000.00",
            "observed": "0.870000",
        },
        "excluded_loans": 0,
        "excluded_outstanding": "0.00",
    },
    "outputs": {
        "covered_outstanding": "58240000.00",
        "covered_loans": 41,
        "simulated_outstanding": "58240000.00",
        "available_balance": "9650000.00",
        "fund_size": "10000000.00",
        "expected_loss": "2593000.00",
        "expected_loss_standard_error": "17000.00",
        "var_95": "5568000.00",
        "var_99": "7656000.00",
        "expected_shortfall_99": "8700000.00",
        "p_exhaustion": "0.000200",
        "p_programme_breaker": "0.108000",
        "by_bank": [
            {
                "bank_id": 1,
                "bank_code": "CQRCB_QJ",
                "covered_outstanding": "19800000.00",
                "loans": 14,
                "expected_loss": "881600.00",
                "var_99_contribution": "2603000.00",
                "p_bank_breaker": "0.412000",
            }
        ],
        "loss_histogram": [
            {"lower": "0.00", "upper": "500000.00", "scenarios": 1321, "probability": "0.132100"}
        ],
        "balance_fan": [
            {"month": 1, "end": "2022-01-31", "p05": "9128000.00", "p50": "9476000.00", "p95": "9650000.00"}
        ],
    },
}


class StressTestRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_RUN_EXAMPLE]})

    id: int
    name: str
    preset: Preset
    created_at: datetime
    created_by: str = Field(description="Who ran it")
    duration_ms: int
    inputs: StressTestInputs
    calibration: StressCalibration
    outputs: StressOutputs


class StressTestSummary(BaseModel):
    """A run in the list: what it was and its headline figures (`/{id}` has the rest)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 12,
                    "name": "PDs doubled, 2021-12-31",
                    "preset": "pds_doubled",
                    "as_of": "2021-12-31",
                    "scenarios": 10000,
                    "seed": 1,
                    "created_at": "2026-12-06T08:30:00Z",
                    "created_by": "staff:王分析",
                    "expected_loss": "2593000.00",
                    "var_99": "7656000.00",
                    "p_exhaustion": "0.000200",
                }
            ]
        }
    )

    id: int
    name: str
    preset: Preset
    as_of: date
    scenarios: int
    seed: int
    created_at: datetime
    created_by: str
    expected_loss: YuanStr
    var_99: YuanStr
    p_exhaustion: ProbabilityStr


# --- bank ratings --------------------------------------------------------------------------------------

RatioStr = Annotated[str, Field(pattern=r"^-?\d+\.\d{4}$", examples=["0.0123"])]
ScoreStr = Annotated[str, Field(pattern=r"^[1-5]\.\d{2}$", examples=["2.75"])]


class LoanLink(BaseModel):
    id: int
    bank_loan_ref: str
    href: str = Field(description="The loan with its events", examples=["/api/v1/loans/1234"])


class MonthStatus(BaseModel):
    month_end: date
    status: Literal["late", "missing"]
    submitted_on: date | None = Field(description="When a late report came (Asia/Shanghai date)")


class MeasureRead(BaseModel):
    key: str = Field(examples=["npl_ratio"])
    label_zh: str
    label_en: str
    value: RatioStr | None = Field(description="null when the bank has nothing to measure (e.g. no loans)")
    numerator: str | None = Field(description="What the value divides, as counted (yuan or a count)")
    denominator: str | None
    percentile: RatioStr | None = Field(
        description="Share of the other rated banks doing better on this measure (0 = none)"
    )
    peer_score: ScoreStr | None = Field(description="1 + 4 × percentile")
    threshold_score: int | None = Field(ge=1, le=5, description="1–5 by the measure's thresholds")
    score: ScoreStr | None = Field(
        description="peer_score and threshold_score, weighted by rating_peer_weight"
    )
    weight: RatioStr
    loan_count: int = Field(description="Loans behind the measure")
    loans: list[LoanLink] = Field(description="The loans behind the measure (the first 200 by reference)")
    months: list[MonthStatus] = Field(description="report_lateness: the months late or missing")


class RatingPoint(BaseModel):
    month: MonthStr
    rating: int = Field(ge=1, le=5)


_RATING_EXAMPLE: dict[str, Any] = {
    "bank_id": 3,
    "bank_code": "ICBC_QJ",
    "bank_name": "中国工商银行黔江支行",
    "month": "2021-09",
    "rating": 4,
    "score": "3.40",
    "driver": "npl_ratio",
    "reason": "NPL ratio 0.0612: worse than 2 of 3 peers, above the third threshold (0.05)",
    "peers": 4,
    "measures": [
        {
            "key": "npl_ratio",
            "label_zh": "不良率",
            "label_en": "NPL ratio",
            "value": "0.0612",
            "numerator": "1200000.00",
            "denominator": "19600000.00",
            "percentile": "1.0000",
            "peer_score": "5.00",
            "threshold_score": 4,
            "score": "4.50",
            "weight": "0.2500",
            "loan_count": 1,
            "loans": [{"id": 118, "bank_loan_ref": "ICBC-2021-0003", "href": "/api/v1/loans/118"}],
            "months": [],
        }
    ],
    "trend": [{"month": "2021-08", "rating": 3}, {"month": "2021-09", "rating": 4}],
    "computed_at": "2021-10-01T02:00:00Z",
    "computed_by": "bank:ICBC_QJ",
}


class BankRatingRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_RATING_EXAMPLE]})

    bank_id: int
    bank_code: str
    bank_name: str
    month: MonthStr
    rating: int = Field(ge=1, le=5, description="1 least risk … 5 most")
    score: ScoreStr = Field(description="Weighted mean of the measures' scores, 1.00–5.00")
    driver: str = Field(description="The measure that weighed most in the score", examples=["npl_ratio"])
    reason: str = Field(description="The driver in words")
    peers: int = Field(description="Banks rated that month")
    measures: list[MeasureRead]
    trend: list[RatingPoint] = Field(description="This and the previous eleven months' ratings, oldest first")
    computed_at: datetime
    computed_by: str


class MonthRatingsRead(BaseModel):
    """Every rated bank's rating for a month (a bank's key: its own row)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"month": "2021-09", "peers": 4, "parameters": {}, "ratings": [_RATING_EXAMPLE]}]
        }
    )

    month: MonthStr | None = Field(description="null when no month has been rated yet")
    peers: int
    parameters: dict[str, Any] = Field(
        description="The weights, thresholds and bands the month was rated with"
    )
    ratings: list[BankRatingRead]
