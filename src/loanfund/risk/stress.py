"""The fund's stress test: how much could the fund lose over the next months, and how likely is it to run
dry? A seeded Monte Carlo (`montecarlo.py`) over the covered book at a date, with probabilities of
default and the loss given default calibrated from the programme's history (`calibration.py`).

The model, loan by loan (the README's "Stress test" section says the same for a bureau analyst):

* The book: every loan covered (active, overdue, non-performing) at the end of `as_of`, with its
  outstanding principal then as exposure at default, held as it stands: no repayment, no new lending.
  A non-performing loan has defaulted already (PD 1). A non-performing loan whose approved claim has
  cash reserved is left out: the reservation stands against it and is already off the available balance.
* A loan defaults at most once, when its principal falls due: in the month of its maturity, or at the
  horizon's end if it matures later, in which case its PD is scaled to the part of its remaining life
  within the horizon (1 − (1 − PD)^(h / m)). The fund is charged in that month.
* A default costs the fund the bank's fund share × the exposure × LGD.
* Defaults are correlated through one systematic factor (Vasicek): correlation `correlation`.

Runs are stored with every input used, and audited. Same inputs, same seed and the same database give
identical results on SQLite and on PostgreSQL: the loans are put in the order of their banks' codes and
their own references before anything is drawn.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from loanfund import rules
from loanfund.audit.service import Actor, record
from loanfund.banks.models import Bank
from loanfund.core.config import Settings
from loanfund.core.errors import InvalidInput, NotFound
from loanfund.core.money import ratio_str, yuan_str
from loanfund.fund import ledger
from loanfund.fund import service as fund_service
from loanfund.loans.state import LoanState
from loanfund.risk import calibration, montecarlo, repository
from loanfund.risk.book import BookLoan, book_at
from loanfund.risk.models import StressTestRun
from loanfund.risk.schemas import Preset, StressTestCreate, StressTestRead, StressTestSummary
from loanfund.rules import add_months

HISTOGRAM_BINS = 20
FAN_QUANTILES = (0.05, 0.50, 0.95)
VAR_WINDOW = 0.001  # VaR contributions: the scenarios within ±0.1% of ranks around the 99th percentile
CLAIM_REFERENCE = "claim"  # the ledger reference of a claim's reservation (claims.service.REFERENCE)


@dataclass(frozen=True)
class PresetInfo:
    name_zh: str
    name_en: str
    values: dict[str, Any]


PRESETS: dict[Preset, PresetInfo] = {
    Preset.baseline: PresetInfo("基准情景", "Baseline", {}),
    Preset.pds_doubled: PresetInfo("违约概率翻倍", "PDs doubled", {"pd_multiplier": Decimal(2)}),
    Preset.correlation_030: PresetInfo("相关系数0.30", "Correlation 0.30", {"correlation": Decimal("0.30")}),
    Preset.largest_bank_defaults: PresetInfo(
        "最大合作银行全部违约", "Largest bank's loans all default", {}
    ),  # the bank is found at run time
}


def _fixed(value: Decimal, places: int) -> str:
    return str(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def _probability(count: int, total: int) -> str:
    found = ratio_str(count, total, places=6)
    assert found is not None  # a run has scenarios
    return found


def _fen(value: float) -> int:
    """A simulated amount to the fen (half to even, as numpy rounds; the same on every machine)."""
    return int(np.rint(value))


def months_until(as_of: date, maturity: date) -> int:
    """Whole months from `as_of` to the end of the month of the horizon in which `maturity` falls (at
    least 1: a loan past its maturity is due at once)."""
    months = (maturity.year - as_of.year) * 12 + maturity.month - as_of.month
    return max(1, months + (1 if maturity.day > as_of.day else 0))


def _invalid(field: str, code: str, message: str) -> InvalidInput:
    return InvalidInput(message, code=code, details=[{"field": field, "message": message}])


# --- the run --------------------------------------------------------------------------------------------


def run(
    session: Session, settings: Settings, actor: Actor, body: StressTestCreate, *, today: date
) -> StressTestRun:
    """Run a stress test, store it and audit it. `today`: the business date (the default `as_of`)."""
    started = time.perf_counter()
    preset = PRESETS[body.preset]
    given = body.model_fields_set
    values = {**preset.values, **{f: getattr(body, f) for f in given if f != "preset"}}

    def value(field: str) -> Any:
        return values[field] if field in values else getattr(body, field)

    as_of: date = value("as_of") or today
    if as_of > today:
        raise _invalid("as_of", "as_of_in_future", f"{as_of} is in the future")
    horizon: int = value("horizon_months")
    scenarios: int = value("scenarios")
    seed: int = value("seed")
    correlation: Decimal = value("correlation")
    multiplier: Decimal = value("pd_multiplier")

    book = book_at(session, rules.loan_rules(settings), as_of)
    banks = repository.banks(session)
    covered = sorted(
        (loan for loan in book if loan.covered),
        key=lambda loan: (banks[loan.bank_id].code, loan.bank_loan_ref),
    )
    shocked: list[int] = value("all_default_banks")
    if body.preset is Preset.largest_bank_defaults and "all_default_banks" not in given:
        shocked = _largest_bank(covered, banks)
    unknown = [b for b in shocked if b not in banks]
    if unknown:
        raise _invalid(
            "all_default_banks", "bank_not_found", f"No bank with id {', '.join(map(str, unknown))}"
        )

    rates = calibration.default_rates(session, settings, as_of)
    given_pd: dict[str, Decimal] = value("pd_by_grade") or {}
    base_pd = {g: given_pd.get(g, r.pd) for g, r in rates.items()}
    used_pd = {g: min(Decimal(1), calibration.probability(p * multiplier)) for g, p in base_pd.items()}
    lgd_found = calibration.loss_given_default(session, settings, as_of)
    given_lgd: Decimal | None = value("lgd")
    lgd = calibration.probability(given_lgd) if given_lgd is not None else lgd_found.lgd

    reserved = _reserved_loans(session, as_of if as_of < today else None)
    simulated = [loan for loan in covered if loan.id not in reserved]
    excluded = [loan for loan in covered if loan.id in reserved]
    bank_ids = sorted({loan.bank_id for loan in covered}, key=lambda b: banks[b].code)
    index = {b: i for i, b in enumerate(bank_ids)}
    shocked_set = set(shocked)

    n = len(simulated)
    ead = np.fromiter((loan.outstanding_fen for loan in simulated), dtype=np.int64, count=n)
    pd = np.empty(n)
    month = np.empty(n, dtype=np.int64)
    for i, loan in enumerate(simulated):
        m = months_until(as_of, loan.maturity_date)
        p = float(used_pd.get(loan.grade, used_pd["U"]))
        if loan.state is LoanState.non_performing:
            p, m = 1.0, 1
        elif loan.bank_id in shocked_set:
            p = 1.0
        if m > horizon:
            p = 1.0 - (1.0 - p) ** (horizon / m)
            m = horizon
        pd[i], month[i] = p, m - 1
    bank = np.fromiter((index[loan.bank_id] for loan in simulated), dtype=np.int64, count=n)
    per_fen = np.array([float(banks[b].fund_share) * float(lgd) for b in bank_ids])
    sim = montecarlo.simulate(
        montecarlo.Book(ead, pd, month, bank),
        banks=len(bank_ids),
        months=horizon,
        loss_per_fen=per_fen,
        scenarios=scenarios,
        seed=seed,
        correlation=float(correlation),
    )
    position = fund_service.fund_position(session, as_of if as_of < today else None)
    outputs = _outputs(
        settings,
        sim,
        as_of=as_of,
        horizon=horizon,
        covered=covered,
        simulated=simulated,
        banks=[banks[b] for b in bank_ids],
        loss_per_fen=per_fen,
        bad_fen=_bad_by_bank(book, reserved),
        available_fen=position.available_fen,
        fund_size_fen=position.fund_size_fen,
    )
    name = value("name") or f"{preset.name_en}, {as_of}"
    inputs = {
        "preset": body.preset.value,
        "name": name,
        "as_of": as_of.isoformat(),
        "horizon_months": horizon,
        "scenarios": scenarios,
        "seed": seed,
        "correlation": _fixed(correlation, 4),
        "pd_by_grade": {g: _fixed(p, 6) for g, p in base_pd.items()},
        "pd_multiplier": _fixed(multiplier, 4),
        "lgd": _fixed(lgd, 6),
        "all_default_banks": shocked,
    }
    calibrated = {
        "pd_by_grade": {
            g: {
                "pd": _fixed(base_pd[g], 6),
                "pd_used": _fixed(used_pd[g], 6),
                "source": "input" if g in given_pd else r.source,
                "observed_loans": r.observed_loans,
                "defaulted_loans": r.defaulted_loans,
                "observed_rate": None if r.observed_rate is None else _fixed(r.observed_rate, 6),
            }
            for g, r in rates.items()
        },
        "lgd": {
            "lgd": _fixed(lgd, 6),
            "source": "input" if given_lgd is not None else lgd_found.source,
            "paid_claims": lgd_found.paid_claims,
            "paid": yuan_str(lgd_found.paid_fen),
            "recovered": yuan_str(lgd_found.recovered_fen),
            "observed": None if lgd_found.observed is None else _fixed(lgd_found.observed, 6),
        },
        "excluded_loans": len(excluded),
        "excluded_outstanding": yuan_str(sum(loan.outstanding_fen for loan in excluded)),
    }
    run = StressTestRun(
        name=name,
        preset=body.preset.value,
        as_of=as_of,
        inputs=inputs,
        calibration=calibrated,
        outputs=outputs,
        duration_ms=int((time.perf_counter() - started) * 1000),
        created_by_kind=actor.kind,
        created_by_id=actor.id,
        created_by_name=actor.name,
    )
    session.add(run)
    session.flush()
    record(
        session,
        actor,
        "stress_test.run",
        "stress_test",
        run.id,
        after={
            "name": name,
            "preset": body.preset.value,
            "as_of": as_of,
            "scenarios": scenarios,
            "seed": seed,
            "expected_loss": outputs["expected_loss"],
            "var_99": outputs["var_99"],
            "p_exhaustion": outputs["p_exhaustion"],
        },
    )
    return run


def run_preset(
    session: Session,
    settings: Settings,
    actor: Actor,
    preset: Preset,
    *,
    today: date,
    as_of: date | None = None,
) -> StressTestRun:
    """A run of a named preset with every other input at its default (what a console's button does)."""
    body = StressTestCreate(preset=preset, as_of=as_of) if as_of else StressTestCreate(preset=preset)
    return run(session, settings, actor, body, today=today)


def _largest_bank(covered: Sequence[BookLoan], banks: dict[int, Bank]) -> list[int]:
    totals: dict[int, int] = {}
    for loan in covered:
        totals[loan.bank_id] = totals.get(loan.bank_id, 0) + loan.outstanding_fen
    if not totals:
        return []
    return [max(totals, key=lambda b: (totals[b], banks[b].code))]


def _reserved_loans(session: Session, as_of: date | None) -> set[int]:
    """Loans whose claim has cash reserved at the end of `as_of` (None: now)."""
    reserved = ledger.reserved_by_reference(session, CLAIM_REFERENCE, as_of=as_of)
    claims = [int(ref) for ref, fen in reserved.items() if fen > 0 and ref.isdigit()]
    return set(repository.claim_loans(session, claims).values())


def _bad_by_bank(book: Sequence[BookLoan], reserved: set[int]) -> dict[int, tuple[int, int]]:
    """Per bank: (principal already bad and not simulated: compensated, or reserved for a paid-to-be
    claim; covered + compensated principal, the NPL ratio's denominator)."""
    out: dict[int, tuple[int, int]] = {}
    for loan in book:
        bad, base = out.get(loan.bank_id, (0, 0))
        if loan.state is LoanState.compensated or loan.id in reserved:
            bad += loan.outstanding_fen
        out[loan.bank_id] = (bad, base + loan.outstanding_fen)
    return out


# --- the figures ----------------------------------------------------------------------------------------


def _outputs(
    settings: Settings,
    sim: montecarlo.Simulation,
    *,
    as_of: date,
    horizon: int,
    covered: Sequence[BookLoan],
    simulated: Sequence[BookLoan],
    banks: Sequence[Bank],
    loss_per_fen: np.ndarray[Any, np.dtype[np.float64]],
    bad_fen: dict[int, tuple[int, int]],
    available_fen: int,
    fund_size_fen: int,
) -> dict[str, Any]:
    scenarios = sim.loss_by_month.shape[0]
    loss = sim.loss
    ordered = np.sort(loss)
    var_99 = montecarlo.order_statistic(ordered, 0.99)
    stop_fen = int(settings.annual_compensation_stop_ratio * fund_size_fen)

    # by bank; VaR 99 contributions: the banks' mean losses in the scenarios ranked around the 99th
    # percentile of the fund's loss, scaled to add up to VaR 99
    bank_loss = sim.defaulted_by_bank * loss_per_fen[None, :]
    rank = np.argsort(loss, kind="stable")
    at = min(scenarios - 1, max(0, int(np.ceil(0.99 * scenarios)) - 1))
    width = max(1, int(VAR_WINDOW * scenarios))
    near = bank_loss[rank[max(0, at - width) : at + width + 1]].mean(axis=0)
    near_total = float(near.sum())
    totals: dict[int, list[int]] = {}
    for loan in covered:
        t = totals.setdefault(loan.bank_id, [0, 0])
        t[0] += loan.outstanding_fen
        t[1] += 1
    by_bank = []
    for i, b in enumerate(banks):
        bad, base = bad_fen.get(b.id, (0, 0))
        ratio = (bad + sim.defaulted_by_bank[:, i]) / base if base else np.zeros(scenarios)
        tripped = int(np.count_nonzero(ratio >= float(settings.breaker_suspend_ratio)))
        contribution = _fen(var_99 * float(near[i]) / near_total) if near_total else 0
        by_bank.append(
            {
                "bank_id": b.id,
                "bank_code": b.code,
                "covered_outstanding": yuan_str(totals[b.id][0]),
                "loans": totals[b.id][1],
                "expected_loss": yuan_str(_fen(float(bank_loss[:, i].mean()))),
                "var_99_contribution": yuan_str(contribution),
                "p_bank_breaker": _probability(tripped, scenarios),
            }
        )

    # the loss histogram: equal bins of whole yuan from 0 to the largest loss
    top = _fen(float(ordered[-1]))
    step = max(100, -(-top // HISTOGRAM_BINS // 100) * 100)
    edges = np.arange(0, step * HISTOGRAM_BINS + 1, step, dtype=np.float64)
    counts, _ = np.histogram(np.rint(loss), bins=edges)
    histogram = [
        {
            "lower": yuan_str(int(edges[k])),
            "upper": yuan_str(int(edges[k + 1])),
            "scenarios": int(counts[k]),
            "probability": _probability(int(counts[k]), scenarios),
        }
        for k in range(HISTOGRAM_BINS)
    ]

    # the balance fan: the available balance at each month's end, less the losses charged by then
    balance = available_fen - np.cumsum(sim.loss_by_month, axis=1)
    balance.sort(axis=0)
    fan = []
    for k in range(horizon):
        p05, p50, p95 = (montecarlo.order_statistic(balance[:, k], q) for q in FAN_QUANTILES)
        fan.append(
            {
                "month": k + 1,
                "end": add_months(as_of, k + 1).isoformat(),
                "p05": yuan_str(_fen(p05)),
                "p50": yuan_str(_fen(p50)),
                "p95": yuan_str(_fen(p95)),
            }
        )

    return {
        "covered_outstanding": yuan_str(sum(loan.outstanding_fen for loan in covered)),
        "covered_loans": len(covered),
        "simulated_outstanding": yuan_str(sum(loan.outstanding_fen for loan in simulated)),
        "available_balance": yuan_str(available_fen),
        "fund_size": yuan_str(fund_size_fen),
        "expected_loss": yuan_str(_fen(float(loss.mean()))),
        "expected_loss_standard_error": yuan_str(_fen(float(loss.std()) / np.sqrt(scenarios))),
        "var_95": yuan_str(_fen(montecarlo.order_statistic(ordered, 0.95))),
        "var_99": yuan_str(_fen(var_99)),
        "expected_shortfall_99": yuan_str(_fen(montecarlo.tail_mean(ordered, 0.99))),
        "p_exhaustion": _probability(int(np.count_nonzero(loss > available_fen)), scenarios),
        "p_programme_breaker": _probability(int(np.count_nonzero(loss >= stop_fen)), scenarios),
        "by_bank": by_bank,
        "loss_histogram": histogram,
        "balance_fan": fan,
    }


# --- reading --------------------------------------------------------------------------------------------


def get_run(session: Session, run_id: int) -> StressTestRun:
    found = repository.get_run(session, run_id)
    if found is None:
        raise NotFound("No such stress test", code="stress_test_not_found")
    return found


def latest_run(session: Session) -> StressTestRun | None:
    """The most recent run (a console's first panel), or None."""
    runs = repository.list_runs(session, after_id=None, limit=1)
    return runs[0] if runs else None


def list_runs(
    session: Session, *, after_id: int | None = None, limit: int | None = None
) -> list[StressTestRun]:
    """Newest first."""
    return repository.list_runs(session, after_id=after_id, limit=limit)


def read(run: StressTestRun) -> StressTestRead:
    return StressTestRead(
        id=run.id,
        name=run.name,
        preset=Preset(run.preset),
        created_at=run.created_at,
        created_by=run.created_by_name,
        duration_ms=run.duration_ms,
        inputs=run.inputs,
        calibration=run.calibration,
        outputs=run.outputs,
    )


def summary(run: StressTestRun) -> StressTestSummary:
    return StressTestSummary(
        id=run.id,
        name=run.name,
        preset=Preset(run.preset),
        as_of=run.as_of,
        scenarios=run.inputs["scenarios"],
        seed=run.inputs["seed"],
        created_at=run.created_at,
        created_by=run.created_by_name,
        expected_loss=run.outputs["expected_loss"],
        var_99=run.outputs["var_99"],
        p_exhaustion=run.outputs["p_exhaustion"],
    )
