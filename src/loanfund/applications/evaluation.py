"""The knowledge-value score: a transparent additive score from 0 to 100. Pure functions, no database.

Each indicator contributes `min(per_unit × value, cap)` points (the weights are settings, DOMAIN.md);
the score is the sum of the contributions, each rounded half-up to two places. The grade is the highest
band whose threshold the score reaches; below the lowest band the enterprise is not eligible.

Derived indicators:
- `rd_intensity_pct` = R&D spending / revenue × 100 (0 when revenue is 0), rounded to two places;
- `rd_staff_pct` = R&D staff / total staff × 100, rounded to two places;
- `high_tech_certificate` counts as 1 when held, else 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from loanfund.core.config import IndicatorWeight

_TWO = Decimal("0.01")
_HUNDRED = Decimal(100)

# The order in which the indicators are shown.
INDICATORS = (
    "invention_patents",
    "utility_model_patents",
    "software_copyrights",
    "rd_intensity_pct",
    "rd_staff_pct",
    "senior_talent",
    "high_tech_certificate",
)


@dataclass(frozen=True)
class Indicators:
    """What the enterprise declares. Money in fen."""

    invention_patents: int
    utility_model_patents: int
    software_copyrights: int
    rd_spending_fen: int
    revenue_fen: int
    rd_staff: int
    total_staff: int
    senior_talent: int
    high_tech_certificate: bool

    def values(self) -> dict[str, Decimal]:
        """The value of each scored indicator."""
        intensity = (
            (Decimal(self.rd_spending_fen) * _HUNDRED / Decimal(self.revenue_fen)).quantize(
                _TWO, rounding=ROUND_HALF_UP
            )
            if self.revenue_fen > 0
            else Decimal(0)
        )
        staff_pct = (
            (Decimal(self.rd_staff) * _HUNDRED / Decimal(self.total_staff)).quantize(
                _TWO, rounding=ROUND_HALF_UP
            )
            if self.total_staff > 0
            else Decimal(0)
        )
        return {
            "invention_patents": Decimal(self.invention_patents),
            "utility_model_patents": Decimal(self.utility_model_patents),
            "software_copyrights": Decimal(self.software_copyrights),
            "rd_intensity_pct": intensity,
            "rd_staff_pct": staff_pct,
            "senior_talent": Decimal(self.senior_talent),
            "high_tech_certificate": Decimal(1 if self.high_tech_certificate else 0),
        }


@dataclass(frozen=True)
class Contribution:
    indicator: str
    value: Decimal
    per_unit: Decimal
    cap: Decimal
    points: Decimal

    def as_json(self) -> dict[str, Any]:
        return {
            "indicator": self.indicator,
            "value": str(self.value),
            "per_unit": str(self.per_unit),
            "cap": str(self.cap),
            "points": str(self.points),
        }


@dataclass(frozen=True)
class Evaluation:
    score: Decimal
    grade: str | None  # None: below the lowest band, not eligible
    contributions: tuple[Contribution, ...]


def contribution(indicator: str, value: Decimal, weight: IndicatorWeight) -> Contribution:
    points = min(weight.per_unit * value, weight.cap).quantize(_TWO, rounding=ROUND_HALF_UP)
    return Contribution(indicator, value, weight.per_unit, weight.cap, points)


def grade_for(score: Decimal, bands: Mapping[str, Decimal]) -> str | None:
    """The best grade whose threshold `score` reaches, or None below every band."""
    for grade, threshold in sorted(bands.items(), key=lambda kv: kv[1], reverse=True):
        if score >= threshold:
            return grade
    return None


def evaluate(
    indicators: Indicators, weights: Mapping[str, IndicatorWeight], bands: Mapping[str, Decimal]
) -> Evaluation:
    values = indicators.values()
    parts = tuple(contribution(name, values[name], weights[name]) for name in INDICATORS)
    score = sum((p.points for p in parts), Decimal("0.00"))
    return Evaluation(score=score, grade=grade_for(score, bands), contributions=parts)
