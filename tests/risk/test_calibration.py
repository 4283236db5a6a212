"""PD per grade and LGD from a constructed history whose counts are known in advance."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from fastapi.testclient import TestClient

from loanfund.core.config import Settings
from loanfund.loans.state import LoanState
from loanfund.risk import calibration
from tests.factories import Caller
from tests.risk.conftest import History

AS_OF = date(2024, 6, 30)  # with npl_days 90: lives that matured by 2024-04-01 are observed
MATURED = date(2023, 9, 30)
RUNNING = date(2024, 12, 31)


def _build(history: History) -> None:
    """Grade A: 25 observed, 1 default. B: 30 observed, none. C: 5 observed, 2 defaults (too few: pooled).
    U: 40 matured with 4 defaults, and a running loan that defaulted already: 41 observed, 5 defaults.
    Not observed: 10 running A loans, a running loan whose default is reported after AS_OF, a loan first
    disbursed after AS_OF. Not a default: a loan reported 60 days past due; a matured loan whose default
    is reported only after AS_OF."""
    start = date(2022, 10, 1)
    for grade, observed, defaults in (("A", 25, 1), ("B", 30, 0), ("C", 5, 2), ("U", 40, 4)):
        for i in range(observed):
            npl = date(2023, 3, 1) if i < defaults else None
            history.loan(grade, start=start, maturity=MATURED, npl_on=npl)
    history.loan(
        "U", start=date(2024, 1, 5), maturity=RUNNING, npl_on=date(2024, 6, 1), state=LoanState.non_performing
    )
    for _ in range(10):
        history.loan("A", start=date(2024, 1, 5), maturity=RUNNING, state=LoanState.active)
    history.loan(
        "B",
        start=date(2024, 1, 5),
        maturity=RUNNING,
        npl_on=date(2024, 7, 15),
        state=LoanState.non_performing,
    )
    history.loan("B", start=date(2024, 7, 1), maturity=date(2025, 6, 30), state=LoanState.active)
    history.loan("D", start=start, maturity=MATURED, dpd_on=(date(2023, 5, 1), 60))
    history.loan("D", start=start, maturity=date(2024, 3, 15), npl_on=date(2024, 7, 20))


def test_default_rates_per_grade_with_their_counts(history: History, settings: Settings) -> None:
    _build(history)
    rates = calibration.default_rates(history.session, settings, AS_OF)
    counts = {g: (r.observed_loans, r.defaulted_loans) for g, r in rates.items()}
    assert counts == {"A": (25, 1), "B": (30, 0), "C": (5, 2), "D": (2, 0), "E": (0, 0), "U": (41, 5)}
    pooled = Decimal(8) / Decimal(103)  # every observed loan of every grade
    assert (rates["A"].pd, rates["A"].source) == (Decimal("0.040000"), "observed")
    assert (rates["B"].pd, rates["B"].source) == (settings.stress_pd_floor, "floor")  # observed 0 < floor
    assert (rates["C"].pd, rates["C"].source) == (calibration.probability(pooled), "pooled")
    assert (rates["E"].pd, rates["E"].source) == (calibration.probability(pooled), "pooled")
    assert (rates["U"].pd, rates["U"].source) == (calibration.probability(Decimal(5) / 41), "observed")
    assert rates["C"].observed_rate == Decimal("0.400000")
    assert rates["E"].observed_rate is None


def test_the_floor_and_the_minimum_count_are_settings(history: History, settings: Settings) -> None:
    _build(history)
    strict = settings.model_copy(update={"stress_pd_floor": Decimal("0.05"), "stress_pd_min_loans": 3})
    rates = calibration.default_rates(history.session, strict, AS_OF)
    assert (rates["A"].pd, rates["A"].source) == (Decimal("0.050000"), "floor")
    assert (rates["C"].pd, rates["C"].source) == (Decimal("0.400000"), "observed")  # 5 ≥ 3 now


def test_an_empty_history_gives_the_floor(settings: Settings, history: History) -> None:
    rates = calibration.default_rates(history.session, settings, AS_OF)
    assert {r.source for r in rates.values()} == {"floor"}
    assert {r.pd for r in rates.values()} == {settings.stress_pd_floor}


def test_loss_given_default_from_recoveries_on_paid_claims(history: History, settings: Settings) -> None:
    bad = [
        history.loan("U", start=date(2022, 1, 5), maturity=MATURED, npl_on=date(2022, 9, 1)) for _ in range(4)
    ]
    assert calibration.loss_given_default(history.session, settings, AS_OF).source == "no_history"
    history.paid_claim(
        bad[0], paid_fen=800_000, paid_on=date(2023, 1, 10), recovered=[(date(2023, 5, 1), 100_000)]
    )
    history.paid_claim(
        bad[1],
        paid_fen=1_200_000,
        paid_on=date(2023, 2, 10),
        recovered=[(date(2023, 6, 1), 50_000), (date(2024, 8, 1), 500_000)],  # the second after AS_OF
    )
    history.paid_claim(bad[2], paid_fen=999_999, paid_on=date(2024, 7, 1), recovered=[])  # paid after AS_OF
    lgd = calibration.loss_given_default(history.session, settings, AS_OF)
    assert (lgd.paid_claims, lgd.paid_fen, lgd.recovered_fen) == (2, 2_000_000, 150_000)
    assert (lgd.lgd, lgd.source) == (Decimal("0.925000"), "observed")
    # recoveries so good that the floor holds
    history.paid_claim(
        bad[3], paid_fen=1_000_000, paid_on=date(2023, 3, 1), recovered=[(date(2023, 4, 1), 1_000_000)]
    )
    lgd = calibration.loss_given_default(history.session, settings, AS_OF)
    assert lgd.observed == Decimal("0.616667")
    lgd = calibration.loss_given_default(
        history.session, settings.model_copy(update={"stress_lgd_floor": Decimal("0.7")}), AS_OF
    )
    assert (lgd.lgd, lgd.source) == (Decimal("0.700000"), "floor")


def test_a_stress_test_echoes_the_calibration(
    client: TestClient, history: History, analyst: Caller, settings: Settings
) -> None:
    _build(history)
    r = client.post(
        "/api/v1/fund/stress-tests",
        json={"as_of": AS_OF.isoformat(), "scenarios": 500, "pd_by_grade": {"B": "0.03"}},
        headers=analyst.headers,
    )
    assert r.status_code == 201, r.text
    run = r.json()
    grades = run["calibration"]["pd_by_grade"]
    assert (grades["A"]["observed_loans"], grades["A"]["defaulted_loans"]) == (25, 1)
    assert (grades["A"]["pd"], grades["A"]["source"]) == ("0.040000", "observed")
    assert (grades["B"]["pd"], grades["B"]["source"]) == ("0.030000", "input")  # given in the request
    assert run["inputs"]["pd_by_grade"]["A"] == "0.040000"
    assert run["inputs"]["pd_by_grade"]["B"] == "0.030000"
    assert run["inputs"]["lgd"] == "1.000000"  # no paid claim: nothing recovered is assumed
    assert run["calibration"]["lgd"]["source"] == "no_history"
