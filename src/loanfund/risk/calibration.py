"""Calibration from the programme's own history: a probability of default per grade, and the loss given
default after recoveries.

**PD per grade.** A loan's life is *observed* at a date once it could no longer default unseen: it has
defaulted (a report put it `npl_days` or more past due), or it matured at least `npl_days` before the
date (a default at maturity would have been reported by then). The observed default rate of a grade is
its defaulted loans ÷ its observed loans — a rate over loans' lives, which are one year or less. A
grade with fewer than `stress_pd_min_loans` observed loans takes the programme-wide rate (all grades
pooled); no rate falls below `stress_pd_floor`. Loans still running are left out: counting them as
survivors would understate the rate.

**LGD.** The fund pays its share of a defaulted loan's principal and later receives the same share of
what the bank recovers. Over the claims paid by the date: LGD = 1 − (the fund's share of recoveries
reported) ÷ (the fund's payouts), never below `stress_lgd_floor`. Without any paid claim the fund
assumes nothing is recovered (LGD 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.orm import Session

from loanfund import rules
from loanfund.core.config import Settings
from loanfund.risk import repository

GRADES = ("A", "B", "C", "D", "E", "U")  # U: loans without an evaluation
PROBABILITY = Decimal("0.000001")


def probability(value: Decimal) -> Decimal:
    """A probability with six places, half-up."""
    return value.quantize(PROBABILITY, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class GradePd:
    grade: str
    pd: Decimal
    source: str  # observed | pooled | floor
    observed_loans: int
    defaulted_loans: int

    @property
    def observed_rate(self) -> Decimal | None:
        if not self.observed_loans:
            return None
        return probability(Decimal(self.defaulted_loans) / self.observed_loans)


@dataclass(frozen=True)
class Lgd:
    lgd: Decimal
    source: str  # observed | floor | no_history
    paid_claims: int
    paid_fen: int
    recovered_fen: int

    @property
    def observed(self) -> Decimal | None:
        if not self.paid_fen:
            return None
        return probability(1 - Decimal(self.recovered_fen) / self.paid_fen)


def npl_dates(session: Session, npl_days: int, as_of: date) -> dict[int, date]:
    """The day each loan first crossed the non-performing line, as reported by `as_of` (a report of d
    days past due on day t puts the crossing at t − (d − npl_days))."""
    out: dict[int, date] = {}
    for row in repository.npl_reports(session, npl_days, as_of):
        crossed = rules.npl_since(row.event_date, row.days_past_due, npl_days)
        if row.loan_id not in out or crossed < out[row.loan_id]:
            out[row.loan_id] = crossed
    return out


def default_rates(session: Session, settings: Settings, as_of: date) -> dict[str, GradePd]:
    """The probability of default of each grade, with the counts behind it."""
    cutoff = as_of - timedelta(days=settings.npl_days)
    counts = {g: [0, 0] for g in GRADES}  # observed, defaulted
    for row in repository.observed_lives(session, settings.npl_days, as_of, cutoff):
        counts[row[0]] = [int(row[1]), int(row[2])]
    observed = sum(c[0] for c in counts.values())
    pooled = Decimal(sum(c[1] for c in counts.values())) / observed if observed else None
    floor = settings.stress_pd_floor
    out = {}
    for grade in GRADES:
        n, d = counts[grade]
        if n >= settings.stress_pd_min_loans:
            rate, source = Decimal(d) / n, "observed"
        elif pooled is not None:
            rate, source = pooled, "pooled"
        else:
            rate, source = floor, "floor"
        if rate < floor:
            rate, source = floor, "floor"
        out[grade] = GradePd(grade, probability(rate), source, n, d)
    return out


def loss_given_default(session: Session, settings: Settings, as_of: date) -> Lgd:
    claims, paid, recovered = repository.paid_claims(session, as_of)
    if not paid:
        return Lgd(Decimal(1), "no_history", claims, paid, recovered)
    observed = probability(1 - Decimal(recovered) / paid)
    if observed < settings.stress_lgd_floor:
        return Lgd(probability(settings.stress_lgd_floor), "floor", claims, paid, recovered)
    return Lgd(observed, "observed", claims, paid, recovered)
