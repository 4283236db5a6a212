"""The programme's rules (DOMAIN.md), each in exactly one function.

Everything that decides what the programme allows or how a figure is classified lives here, as a plain
function of values and settings: the loan write path (single requests, batches and group commit alike),
the lifecycle (`loans.state`), the fund's coverage gate and breakers, claims, the reports and the demo
plan call these, never a copy. Where SQL has to restate a rule for speed (the aggregates' rebuild in
`portfolio.rebuild`), a test holds the SQL to the function here over generated cases.

The thresholds are settings (`core.config.Settings`); the dated tables (LPR, credit lines by grade) are
database rows read by `rates.service`.
"""

from __future__ import annotations

import calendar
import enum
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from loanfund.core.config import Settings


def add_months(day: date, months: int) -> date:
    """`day` moved by whole months, on the same day of the month or the month's last day."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


# --- contracts ----------------------------------------------------------------------------------------


def max_rate(lpr_pct: Decimal, settings: Settings) -> Decimal:
    """The highest annual rate (percent) a loan may carry: the one-year LPR in force + the cap."""
    return lpr_pct + Decimal(settings.rate_cap_bp) / 100


def latest_maturity(start: date, settings: Settings) -> date:
    """The last maturity date a contract starting on `start` may have (the longest term)."""
    return add_months(start, settings.max_term_months)


# --- the loan's life ------------------------------------------------------------------------------------


class Standing(enum.Enum):
    """How days past due classify a disbursed loan (the Chinese NPL line)."""

    performing = "performing"
    overdue = "overdue"
    non_performing = "non_performing"


@dataclass(frozen=True)
class LoanRules:
    """The settings the lifecycle reads, taken from `Settings` once (`loan_rules`)."""

    npl_days: int = 90
    early_default_months: int = 6


def loan_rules(settings: Settings) -> LoanRules:
    return LoanRules(npl_days=settings.npl_days, early_default_months=settings.early_default_months)


def standing(days_past_due: int, npl_days: int) -> Standing:
    """Performing at 0 days past due, overdue below `npl_days`, non-performing from it."""
    if days_past_due <= 0:
        return Standing.performing
    if days_past_due < npl_days:
        return Standing.overdue
    return Standing.non_performing


def max_days_past_due(first_disbursed_on: date, report_date: date) -> int:
    """A loan cannot be more days past due than it is old: the days from its first disbursement to the
    report date."""
    return (report_date - first_disbursed_on).days


def npl_since(report_date: date, days_past_due: int, npl_days: int) -> date:
    """The day a loan reported `days_past_due` on `report_date` crossed the non-performing line. With
    days past due bounded by the loan's age it is never before first disbursement + `npl_days`."""
    return report_date - timedelta(days=days_past_due - npl_days)


def is_early_default(first_disbursed_on: date, became_npl_on: date, rules: LoanRules) -> bool:
    """Non-performing within `early_default_months` of the first disbursement."""
    return became_npl_on < add_months(first_disbursed_on, rules.early_default_months)


# --- the fund ---------------------------------------------------------------------------------------------


def leverage_limit(balance_fen: int, settings: Settings) -> int:
    """The covered outstanding principal the fund's balance may stand behind (the leverage cap)."""
    return int(settings.leverage_cap * balance_fen)


def ratio(numerator: int, denominator: int, places: int = 4) -> Decimal | None:
    if denominator <= 0:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(Decimal(1).scaleb(-places))


def npl_ratio(npl_fen: int, compensated_fen: int, covered_fen: int) -> Decimal | None:
    """(non-performing + compensated not written off) ÷ (covered outstanding including them)."""
    return ratio(npl_fen + compensated_fen, covered_fen + compensated_fen)


class BankLevel(enum.StrEnum):
    normal = "normal"
    warning = "warning"
    suspended = "suspended"


def bank_breaker_level(npl: Decimal | None, settings: Settings) -> BankLevel:
    """A bank's circuit breaker by its NPL ratio: warning from one line, suspended from the other."""
    if npl is None or npl < settings.breaker_warning_ratio:
        return BankLevel.normal
    if npl < settings.breaker_suspend_ratio:
        return BankLevel.warning
    return BankLevel.suspended


def programme_trips(paid_in_year_fen: int, fund_size_fen: int, settings: Settings) -> bool:
    """Compensation paid in a calendar year has reached the programme's share of the fund's size."""
    r = ratio(paid_in_year_fen, fund_size_fen)
    return r is not None and r >= settings.annual_compensation_stop_ratio


# --- claims -------------------------------------------------------------------------------------------------


def compensation(principal_fen: int, fund_share: Decimal) -> int:
    """What the fund pays on a default: its share (0.80) of the principal, rounded half-up to the fen; the
    bank bears the rest and all lost interest."""
    return int((Decimal(principal_fen) * fund_share).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def recovery_share(net_fen: int, paid_fen: int, principal_fen: int) -> int:
    """The fund's part of a net recovery after compensation: the share it paid of the principal at
    default (the bank's agreed share, unless the claim was reduced), rounded half-up to the fen."""
    share = Decimal(net_fen) * paid_fen / principal_fen
    return int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def claim_deadline(npl_since_day: date, settings: Settings) -> date:
    """The last day a claim may be filed on a loan non-performing since `npl_since_day`."""
    return npl_since_day + timedelta(days=settings.claim_window_days)
