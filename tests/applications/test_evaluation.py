"""The knowledge-value score: contributions, caps, rounding, grade bands and the settings that drive them."""

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from loanfund.applications.evaluation import INDICATORS, Indicators, evaluate, grade_for
from loanfund.core.config import IndicatorWeight, Settings

SETTINGS = Settings(env="test")
WEIGHTS = SETTINGS.evaluation_weights
BANDS = SETTINGS.grade_bands


def ind(**kw: Any) -> Indicators:
    base: dict[str, Any] = {
        "invention_patents": 0,
        "utility_model_patents": 0,
        "software_copyrights": 0,
        "rd_spending_fen": 0,
        "revenue_fen": 100_000_000,
        "rd_staff": 0,
        "total_staff": 10,
        "senior_talent": 0,
        "high_tech_certificate": False,
    }
    base.update(kw)
    return Indicators(**base)


def points_of(result: Any) -> dict[str, Decimal]:
    return {c.indicator: c.points for c in result.contributions}


def test_each_indicator_earns_per_unit_up_to_its_cap() -> None:
    result = evaluate(
        ind(
            invention_patents=3,
            utility_model_patents=7,
            software_copyrights=1,
            rd_spending_fen=30_000_000,  # 300,000 yuan of 10,000,000 yuan revenue: 3 %
            revenue_fen=1_000_000_000,
            rd_staff=15,
            total_staff=60,  # 25 %
            senior_talent=1,
            high_tech_certificate=False,
        ),
        WEIGHTS,
        BANDS,
    )
    pts = points_of(result)
    w = WEIGHTS
    assert pts["invention_patents"] == w["invention_patents"].per_unit * 3
    assert pts["utility_model_patents"] == w["utility_model_patents"].cap  # 7 × 2 = 14 > cap 10
    assert pts["software_copyrights"] == w["software_copyrights"].per_unit * 1
    assert pts["rd_intensity_pct"] == w["rd_intensity_pct"].per_unit * 3
    assert pts["rd_staff_pct"] == w["rd_staff_pct"].cap  # 25 × 0.5 = 12.5 > cap 10
    assert pts["senior_talent"] == w["senior_talent"].per_unit * 1
    assert pts["high_tech_certificate"] == 0
    assert result.score == sum(pts.values())
    assert result.grade == grade_for(result.score, BANDS)
    assert [c.indicator for c in result.contributions] == list(INDICATORS)
    values = {c.indicator: c.value for c in result.contributions}
    assert values["rd_intensity_pct"] == Decimal("3.00")
    assert values["rd_staff_pct"] == Decimal("25.00")


def test_percentages_are_rounded_to_two_places_and_points_quantized() -> None:
    result = evaluate(ind(rd_spending_fen=1, revenue_fen=3, rd_staff=1, total_staff=3), WEIGHTS, BANDS)
    parts = {c.indicator: c for c in result.contributions}
    assert parts["rd_intensity_pct"].value == Decimal("33.33")
    assert parts["rd_staff_pct"].value == Decimal("33.33")
    for c in result.contributions:
        assert c.points == c.points.quantize(Decimal("0.01"))


def test_zero_revenue_gives_zero_intensity() -> None:
    result = evaluate(ind(rd_spending_fen=5_000_000, revenue_fen=0), WEIGHTS, BANDS)
    assert points_of(result)["rd_intensity_pct"] == 0


def test_certificate_counts_once() -> None:
    with_cert = evaluate(ind(high_tech_certificate=True), WEIGHTS, BANDS)
    without = evaluate(ind(high_tech_certificate=False), WEIGHTS, BANDS)
    assert with_cert.score - without.score == min(
        WEIGHTS["high_tech_certificate"].per_unit, WEIGHTS["high_tech_certificate"].cap
    )


def test_a_perfect_enterprise_scores_the_sum_of_the_caps() -> None:
    result = evaluate(
        ind(
            invention_patents=1000,
            utility_model_patents=1000,
            software_copyrights=1000,
            rd_spending_fen=10**9,
            revenue_fen=10**9,
            rd_staff=10,
            total_staff=10,
            senior_talent=1000,
            high_tech_certificate=True,
        ),
        WEIGHTS,
        BANDS,
    )
    assert result.score == sum(w.cap for w in WEIGHTS.values())
    assert result.grade == "A"


@pytest.mark.parametrize(
    ("score", "grade"),
    [
        ("100", "A"),
        ("85", "A"),
        ("84.99", "B"),
        ("75", "B"),
        ("74.99", "C"),
        ("65", "C"),
        ("64.99", "D"),
        ("55", "D"),
        ("54.99", "E"),
        ("45", "E"),
        ("44.99", None),
        ("0", None),
    ],
)
def test_grade_band_boundaries(score: str, grade: str | None) -> None:
    assert grade_for(Decimal(score), BANDS) == grade


def test_bands_come_from_settings() -> None:
    bands = {"A": Decimal(90), "B": Decimal(80), "C": Decimal(70), "D": Decimal(60), "E": Decimal(50)}
    assert grade_for(Decimal("85"), bands) == "B"
    assert grade_for(Decimal("49.99"), bands) is None


counts = st.integers(min_value=0, max_value=100)
fen = st.integers(min_value=0, max_value=10**12)


@st.composite
def indicator_sets(draw: st.DrawFn) -> Indicators:
    total = draw(st.integers(min_value=1, max_value=5000))
    return Indicators(
        invention_patents=draw(counts),
        utility_model_patents=draw(counts),
        software_copyrights=draw(counts),
        rd_spending_fen=draw(fen),
        revenue_fen=draw(fen),
        rd_staff=draw(st.integers(min_value=0, max_value=total)),
        total_staff=total,
        senior_talent=draw(counts),
        high_tech_certificate=draw(st.booleans()),
    )


@given(indicator_sets())
def test_score_is_within_0_100_and_the_sum_of_its_parts(indicators: Indicators) -> None:
    result = evaluate(indicators, WEIGHTS, BANDS)
    assert Decimal(0) <= result.score <= Decimal(100)
    assert result.score == sum(c.points for c in result.contributions)
    for c in result.contributions:
        assert Decimal(0) <= c.points <= c.cap
    assert result.grade == grade_for(result.score, BANDS)


_MORE = {
    "invention_patents": lambda i, n: replace(i, invention_patents=i.invention_patents + n),
    "utility_model_patents": lambda i, n: replace(i, utility_model_patents=i.utility_model_patents + n),
    "software_copyrights": lambda i, n: replace(i, software_copyrights=i.software_copyrights + n),
    "rd_spending": lambda i, n: replace(i, rd_spending_fen=i.rd_spending_fen + n * 1000),
    "rd_staff": lambda i, n: replace(i, rd_staff=min(i.rd_staff + n, i.total_staff)),
    "senior_talent": lambda i, n: replace(i, senior_talent=i.senior_talent + n),
    "high_tech_certificate": lambda i, n: replace(i, high_tech_certificate=True),
}


@given(indicator_sets(), st.sampled_from(sorted(_MORE)), st.integers(min_value=1, max_value=50))
def test_more_of_any_indicator_never_lowers_the_score(indicators: Indicators, which: str, n: int) -> None:
    before = evaluate(indicators, WEIGHTS, BANDS)
    after = evaluate(_MORE[which](indicators, n), WEIGHTS, BANDS)
    assert after.score >= before.score
    for b, a in zip(before.contributions, after.contributions, strict=True):
        assert a.points >= b.points


def _weights(**changes: IndicatorWeight) -> dict[str, IndicatorWeight]:
    return {**WEIGHTS, **changes}


@pytest.mark.parametrize(
    "bad",
    [
        {
            "evaluation_weights": _weights(
                invention_patents=IndicatorWeight(per_unit=Decimal(6), cap=Decimal(40))
            )
        },
        {"evaluation_weights": {k: v for k, v in WEIGHTS.items() if k != "senior_talent"}},
        {"evaluation_weights": _weights(senior_talent=IndicatorWeight(per_unit=Decimal(-1), cap=Decimal(5)))},
        {"grade_bands": {**BANDS, "B": Decimal(90)}},
        {"grade_bands": {k: v for k, v in BANDS.items() if k != "E"}},
        {"grade_bands": {**BANDS, "A": Decimal(120)}},
    ],
)
def test_settings_refuse_weights_and_bands_that_break_the_score(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Settings(env="test", **bad)
