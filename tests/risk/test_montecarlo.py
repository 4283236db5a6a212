"""The loss simulation against what is known in closed form: Vasicek's limiting distribution for a large
homogeneous portfolio, the expected loss of any portfolio, and the laws of the draws themselves."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr, ndtri

from loanfund.risk.montecarlo import Book, Simulation, order_statistic, simulate, tail_mean, vasicek_quantile


def _book(ead: list[int] | np.ndarray, pd: list[float] | np.ndarray, months: int = 1, banks: int = 1) -> Book:
    n = len(ead)
    rng = np.random.default_rng(99)
    return Book(
        np.asarray(ead, dtype=np.int64),
        np.asarray(pd, dtype=np.float64),
        rng.integers(0, months, n).astype(np.int64),
        rng.integers(0, banks, n).astype(np.int64),
    )


def _run(
    book: Book,
    *,
    scenarios: int,
    seed: int = 1,
    correlation: float = 0.15,
    banks: int = 1,
    months: int = 1,
) -> Simulation:
    return simulate(
        book,
        banks=banks,
        months=months,
        loss_per_fen=np.ones(banks),
        scenarios=scenarios,
        seed=seed,
        correlation=correlation,
    )


def _vasicek_cdf(rate: float, pd: float, rho: float) -> float:
    """P(loss rate ≤ rate) for an infinitely granular homogeneous portfolio."""
    return float(ndtr((np.sqrt(1 - rho) * ndtri(rate) - ndtri(pd)) / np.sqrt(rho)))


def test_a_large_homogeneous_portfolio_follows_vasicek() -> None:
    """10,000 equal loans, PD 2%, correlation 0.15, 20,000 scenarios. Tolerance, stated: at each
    simulated quantile the closed-form distribution function is within four standard errors of a sample
    proportion, 4·√(q(1−q)/S), of q; and the 95% and 99% loss quantiles are within 5% of Vasicek's
    (the portfolio is finite: 10,000 loans add a little binomial spread around the limit)."""
    n, scenarios, pd, rho = 10_000, 20_000, 0.02, 0.15
    sim = _run(_book([100] * n, [pd] * n), scenarios=scenarios, seed=11, correlation=rho)
    rates = np.sort(sim.loss) / (100 * n)
    for q in (0.5, 0.9, 0.95, 0.99, 0.999):
        simulated = order_statistic(rates, q)
        assert abs(_vasicek_cdf(simulated, pd, rho) - q) < 4 * np.sqrt(q * (1 - q) / scenarios), q
    for q in (0.95, 0.99):
        closed = vasicek_quantile(pd, rho, q)
        assert abs(order_statistic(rates, q) / closed - 1) < 0.05, q


def test_vasicek_quantile_shape() -> None:
    assert vasicek_quantile(0.02, 0.0, 0.99) == pytest.approx(0.02)  # no correlation: no spread
    quantiles = [vasicek_quantile(0.02, 0.15, q) for q in (0.5, 0.9, 0.99, 0.999)]
    assert quantiles == sorted(quantiles)
    assert quantiles[0] < 0.02 < quantiles[1]  # skewed: the median year is better than the average


def _mixed_book(n: int = 3_000) -> tuple[Book, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    ead = rng.integers(30, 300, n) * 1_000_000
    pd = rng.choice([0.0, 0.005, 0.02, 0.05, 0.2, 0.7, 1.0], n)  # every branch: none, rare, most, all
    bank = rng.integers(0, 3, n)
    month = rng.integers(0, 12, n)
    return Book(ead, pd, month, bank), ead, pd, bank


def test_expected_loss_matches_the_sum_within_monte_carlo_error() -> None:
    """Any portfolio: mean loss = Σ PD × EAD × (share × LGD), within four standard errors."""
    book, ead, pd, bank = _mixed_book()
    per_fen = np.array([0.8 * 0.6, 0.7 * 0.9, 0.8 * 1.0])
    scenarios = 4_000
    sim = simulate(
        book, banks=3, months=12, loss_per_fen=per_fen, scenarios=scenarios, seed=5, correlation=0.2
    )
    expected = float((pd * ead * per_fen[bank]).sum())
    error = float(sim.loss.std()) / np.sqrt(scenarios)
    assert abs(float(sim.loss.mean()) - expected) < 4 * error
    # and per bank (defaulted principal), and in the months the defaults fall in
    for b in range(3):
        mine = bank == b
        defaulted = sim.defaulted_by_bank[:, b]
        assert abs(defaulted.mean() - (pd[mine] * ead[mine]).sum()) < 4 * defaulted.std() / np.sqrt(scenarios)
    never = ~np.isin(np.arange(12), book.month[pd > 0])
    assert (sim.loss_by_month[:, never] == 0).all()


def test_certain_and_impossible_defaults_are_exact() -> None:
    ead = [1_000, 2_000, 4_000, 8_000]
    sim = _run(_book(ead, [1.0, 1.0, 0.0, 0.0]), scenarios=500)
    assert (sim.loss == 3_000).all()
    assert (sim.defaulted_by_bank[:, 0] == 3_000).all()


def test_each_loan_defaults_at_most_once_and_with_its_own_probability() -> None:
    """Exposures 2^0 … 2^39 make every scenario's defaulted principal spell out which loans defaulted:
    no loan counts twice (the sum's bits are the loans), and each loan defaults about as often as its PD
    says, whether the block mostly survives or mostly defaults (then the survivors are drawn)."""
    n, scenarios = 40, 20_000
    pd = np.where(np.arange(n) < 20, 0.1, 0.8)  # two blocks: few defaults, most default
    sim = _run(_book([2**i for i in range(n)], pd), scenarios=scenarios, seed=3, correlation=0.3)
    sums = sim.defaulted_by_bank[:, 0].astype(np.int64)
    assert (sim.defaulted_by_bank[:, 0] == sums).all()  # whole fen, exactly
    bits = (sums[:, None] >> np.arange(n)) & 1
    frequency = bits.mean(axis=0)
    tolerance = 4 * np.sqrt(pd * (1 - pd) / scenarios) + 0.01  # correlated draws: a little extra
    assert (np.abs(frequency - pd) < tolerance).all()
    # correlation makes defaults cluster: two loans default together more often than independently
    together = (bits[:, 0] & bits[:, 1]).mean()
    assert together > frequency[0] * frequency[1] * 1.2


def test_the_same_seed_gives_the_same_scenarios() -> None:
    book, *_ = _mixed_book(1_000)
    a = _run(book, scenarios=2_000, seed=42, banks=3, months=12)
    b = _run(book, scenarios=2_000, seed=42, banks=3, months=12)
    c = _run(book, scenarios=2_000, seed=43, banks=3, months=12)
    assert np.array_equal(a.loss_by_month, b.loss_by_month)
    assert np.array_equal(a.defaulted_by_bank, b.defaulted_by_bank)
    assert not np.array_equal(a.loss_by_month, c.loss_by_month)


def test_doubling_pds_doubles_the_expected_loss() -> None:
    rng = np.random.default_rng(1)
    n, scenarios = 5_000, 4_000
    ead = rng.integers(30, 300, n) * 1_000_000
    pd = rng.choice([0.005, 0.01, 0.02, 0.04], n)
    base = _run(Book(ead, pd, np.zeros(n, np.int64), np.zeros(n, np.int64)), scenarios=scenarios)
    doubled = _run(Book(ead, 2 * pd, np.zeros(n, np.int64), np.zeros(n, np.int64)), scenarios=scenarios)
    ratio = doubled.loss.mean() / base.loss.mean()
    # each mean is within ~1.5% (one standard error ≈ 0.4%) of its closed form
    assert 1.9 < ratio < 2.1


def test_more_correlation_widens_the_tail_but_keeps_the_mean() -> None:
    rng = np.random.default_rng(2)
    n, scenarios = 3_000, 10_000
    book = Book(
        rng.integers(30, 300, n) * 1_000_000, np.full(n, 0.03), np.zeros(n, np.int64), np.zeros(n, np.int64)
    )
    low = _run(book, scenarios=scenarios, correlation=0.15)
    high = _run(book, scenarios=scenarios, correlation=0.30)
    error = np.hypot(low.loss.std(), high.loss.std()) / np.sqrt(scenarios)
    assert abs(high.loss.mean() - low.loss.mean()) < 4 * error
    var_low, var_high = (order_statistic(np.sort(s.loss), 0.99) for s in (low, high))
    assert var_high > 1.2 * var_low
    assert tail_mean(np.sort(high.loss), 0.99) >= var_high


def test_an_empty_book_loses_nothing() -> None:
    empty = Book(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64))
    sim = simulate(
        empty, banks=0, months=12, loss_per_fen=np.zeros(0), scenarios=100, seed=1, correlation=0.15
    )
    assert sim.loss.shape == (100,)
    assert not sim.loss.any()


def test_bad_inputs_are_refused() -> None:
    book = _book([100], [0.5])
    with pytest.raises(ValueError, match="correlation"):
        _run(book, scenarios=10, correlation=1.0)
    with pytest.raises(ValueError, match="probabilities"):
        _book([100], [1.5])
    outside = Book(np.array([1]), np.array([0.1]), np.array([3]), np.array([0]))
    with pytest.raises(ValueError, match="months"):
        _run(outside, scenarios=10, months=2)
