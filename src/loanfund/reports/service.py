"""The oversight reports: what each one counts, for whom, read from aggregates and the ledger.

Definitions (also in the field descriptions of `schemas.py`):

* **Loans disbursed (count)** in a year: loans whose *first* disbursement fell in the year
  (Σ `loans_started`). **Amount disbursed**: every disbursement in the year, first or later tranche.
  **Cumulative**: every disbursement up to the end of the year.
* **Stocks at year end** (outstanding principal by category) are the sums of the aggregates' deltas up
  to 31 December: *covered* = loans `active`, `overdue` or `non_performing` (the fund stands behind
  them; this is `outstanding_principal`), *compensated* = compensated and not yet written off.
* **NPL ratio** = (non-performing + compensated-not-written-off) ÷ (covered + compensated-not-written-off),
  the circuit breaker's definition. **Leverage** = covered ÷ fund balance. **Maximum liability** =
  Σ per bank covered × the bank's fund share (each rounded half-up to the fen). **Coverage ratio** = fund
  balance ÷ maximum liability. Ratios have four places and are None when the denominator is 0 — the
  same definitions and rounding as `GET /fund/exposure` (`fund.exposure`), so the two always agree.
* **Fund** figures come from the ledger at the value date 31 December: size = contributions (city +
  district, net of reversals); balance = fund cash (available + reserved); available = balance − reserved.
  Compensation paid and recoveries are the movements of the per-bank ledger accounts.

A bank's key gets the same reports restricted to its own loans (`bank_scope`): loan figures, enterprise
counts, maximum liability, compensation paid and recoveries are its own. The fund's position (size,
contributions, balance, reserved, available) and the ratios set against it (leverage, coverage) are the
bureau's and stay null for a bank, as in `GET /fund/exposure`. Bureau staff narrowing a report to one
bank (`bank_id`) see that bank's loans set against the whole fund.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from loanfund import rules
from loanfund.banks.models import Bank
from loanfund.claims.models import ClaimState
from loanfund.core.auth import Principal
from loanfund.core.config import Settings
from loanfund.core.errors import Conflict, NotFound, field_error
from loanfund.core.money import share_of
from loanfund.fund import chart, ledger
from loanfund.fund.models import ContributionSource
from loanfund.portfolio import service as portfolio
from loanfund.portfolio.models import PortfolioMonthly
from loanfund.reports import repository

JSON_MAX_ROWS = 50_000  # a register longer than this is a download (CSV streams any length)
SOURCES = tuple(s.value for s in ContributionSource)

# GB/T 4754-2017 sections
INDUSTRY_NAMES: dict[str, tuple[str, str]] = {
    "A": ("农、林、牧、渔业", "Agriculture, forestry, animal husbandry and fishery"),
    "B": ("采矿业", "Mining"),
    "C": ("制造业", "Manufacturing"),
    "D": ("电力、热力、燃气及水生产和供应业", "Electricity, heat, gas and water"),
    "E": ("建筑业", "Construction"),
    "F": ("批发和零售业", "Wholesale and retail trade"),
    "G": ("交通运输、仓储和邮政业", "Transport, storage and post"),
    "H": ("住宿和餐饮业", "Accommodation and catering"),
    "I": ("信息传输、软件和信息技术服务业", "Information transmission, software and IT services"),
    "J": ("金融业", "Finance"),
    "K": ("房地产业", "Real estate"),
    "L": ("租赁和商务服务业", "Leasing and business services"),
    "M": ("科学研究和技术服务业", "Scientific research and technical services"),
    "N": ("水利、环境和公共设施管理业", "Water, environment and public facilities management"),
    "O": ("居民服务、修理和其他服务业", "Resident, repair and other services"),
    "P": ("教育", "Education"),
    "Q": ("卫生和社会工作", "Health and social work"),
    "R": ("文化、体育和娱乐业", "Culture, sports and entertainment"),
    "S": ("公共管理、社会保障和社会组织", "Public administration, social security and organisations"),
    "T": ("国际组织", "International organisations"),
}
GRADE_NAMES: dict[str, tuple[str, str]] = {
    **{g: (f"{g}级", f"Grade {g}") for g in "ABCDE"},
    "U": ("未评级", "Unrated"),
}


def ratio(numerator: int, denominator: int) -> Decimal | None:
    """numerator ÷ denominator with four places; None when the denominator is 0 (as exposure's)."""
    return rules.ratio(numerator, denominator)


def now() -> datetime:
    return datetime.now(UTC)


# --- who sees what -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """The loans a report covers: one bank's, or the whole programme's (`bank` None). `by_bank` says the
    caller is that bank: the fund's own position (size, balance, leverage) is then not shown, as in
    `GET /fund/exposure`, where a bank sees its own line only."""

    bank: Bank | None
    by_bank: bool = False

    @property
    def shows_fund(self) -> bool:
        return not self.by_bank

    @property
    def bank_id(self) -> int | None:
        return None if self.bank is None else self.bank.id


def bank_scope(session: Session, caller: Principal, bank_id: int | None = None) -> Scope:
    """The one place reports are scoped: a bank sees its own loans only (asking for another bank's is
    404, as for any record not its own); bureau staff see the programme or, with `bank_id`, one bank."""
    if caller.is_bank:
        assert caller.bank_id is not None
        if bank_id is not None and bank_id != caller.bank_id:
            raise NotFound("No such bank", code="bank_not_found")
        bank_id = caller.bank_id
    elif bank_id is None:
        return Scope(None)
    bank = repository.get_bank(session, bank_id)
    if bank is None:
        raise NotFound("No such bank", code="bank_not_found")
    return Scope(bank, by_bank=caller.is_bank)


def year_bounds(year: int) -> tuple[date, date]:
    return date(year, 1, 1), date(year, 12, 31)


# --- portfolio figures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """Flows in a period and stocks at its end, in fen (counts for loans)."""

    loans_started: int = 0
    disbursed_fen: int = 0
    principal_repaid_fen: int = 0
    interest_repaid_fen: int = 0
    cumulative_loans: int = 0
    cumulative_disbursed_fen: int = 0
    covered_fen: int = 0
    overdue_fen: int = 0
    npl_fen: int = 0
    compensated_fen: int = 0

    @classmethod
    def of(cls, row: Row[Any]) -> Figures:
        m = row._mapping
        return cls(
            loans_started=int(m["loans_started"]),
            disbursed_fen=int(m["disbursed"]),
            principal_repaid_fen=int(m["principal_repaid"]),
            interest_repaid_fen=int(m["interest_repaid"]),
            cumulative_loans=int(m["cumulative_loans"]),
            cumulative_disbursed_fen=int(m["cumulative_disbursed"]),
            covered_fen=int(m["covered"]),
            overdue_fen=int(m["overdue"]),
            npl_fen=int(m["npl"]),
            compensated_fen=int(m["compensated"]),
        )

    def __add__(self, other: Figures) -> Figures:
        return Figures(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def is_zero(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))

    @property
    def npl_ratio(self) -> Decimal | None:
        return rules.npl_ratio(self.npl_fen, self.compensated_fen, self.covered_fen)

    def row(self) -> dict[str, Any]:
        """The figures under the report column keys (fen and counts)."""
        return {
            "loans_disbursed_count": self.loans_started,
            "loans_disbursed_amount": self.disbursed_fen,
            "principal_repaid_amount": self.principal_repaid_fen,
            "interest_repaid_amount": self.interest_repaid_fen,
            "cumulative_loans_count": self.cumulative_loans,
            "cumulative_disbursed_amount": self.cumulative_disbursed_fen,
            "outstanding_principal": self.covered_fen,
            "overdue_principal": self.overdue_fen,
            "npl_principal": self.npl_fen,
            "compensated_principal": self.compensated_fen,
            "npl_ratio": self.npl_ratio,
        }


def total(figures: Iterable[Figures]) -> Figures:
    out = Figures()
    for f in figures:
        out = out + f
    return out


# --- the fund, from the ledger ------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerFigures:
    """The fund's ledger at a value date; per-bank accounts summed over the scope's banks, and by bank."""

    contributions_fen: dict[str, int]
    cash_available_fen: int
    reserved_fen: int
    comp_paid_by_bank: dict[int, int]
    recovery_income_by_bank: dict[int, int]
    recovery_receivable_by_bank: dict[int, int]

    @property
    def fund_size_fen(self) -> int:
        return sum(self.contributions_fen.values())

    @property
    def balance_fen(self) -> int:
        return self.cash_available_fen + self.reserved_fen

    def comp_paid_fen(self, bank_id: int | None) -> int:
        return _for(self.comp_paid_by_bank, bank_id)

    def recoveries_recognised_fen(self, bank_id: int | None) -> int:
        return _for(self.recovery_income_by_bank, bank_id)

    def recoveries_received_fen(self, bank_id: int | None) -> int:
        """Recognised minus still receivable: what the banks have remitted."""
        return _for(self.recovery_income_by_bank, bank_id) - _for(self.recovery_receivable_by_bank, bank_id)


def _for(by_bank: Mapping[int, int], bank_id: int | None) -> int:
    return sum(by_bank.values()) if bank_id is None else by_bank.get(bank_id, 0)


def ledger_at(session: Session, *days: date) -> list[LedgerFigures]:
    """Balances of the fund's accounts from the entries with value dates up to each of `days`."""
    return [_figures(states) for states in ledger.account_states_on(session, days)]


def _figures(states: list[ledger.AccountState]) -> LedgerFigures:
    by_code: dict[str, int] = {}
    per_bank: dict[str, dict[int, int]] = {
        chart.COMP_PAID: {},
        chart.RECOVERY_INCOME: {},
        chart.RECOVERY_RECEIVABLE: {},
    }
    for state in states:
        account = state.account
        by_code[account.code] = state.balance_fen
        if account.category in per_bank and account.bank_id is not None:
            target = per_bank[account.category]
            target[account.bank_id] = target.get(account.bank_id, 0) + state.balance_fen
    return LedgerFigures(
        contributions_fen={src: by_code.get(chart.contrib(src), 0) for src in SOURCES},
        cash_available_fen=by_code.get(chart.CASH_AVAILABLE, 0),
        reserved_fen=by_code.get(chart.CASH_RESERVED, 0),
        comp_paid_by_bank=per_bank[chart.COMP_PAID],
        recovery_income_by_bank=per_bank[chart.RECOVERY_INCOME],
        recovery_receivable_by_bank=per_bank[chart.RECOVERY_RECEIVABLE],
    )


# --- by bank (also the base of the summary) -------------------------------------------------------------


@dataclass(frozen=True)
class BankLine:
    bank: Bank
    figures: Figures
    compensation_paid_fen: int  # in the year

    @property
    def max_liability_fen(self) -> int:
        return share_of(self.figures.covered_fen, self.bank.fund_share)

    def row(self) -> dict[str, Any]:
        f = self.figures
        return {
            "bank_id": self.bank.id,
            "bank_code": self.bank.code,
            "bank_name": self.bank.name,
            "fund_share": self.bank.fund_share,
            **f.row(),
            "loans_disbursed_wan": f.disbursed_fen,
            "cumulative_disbursed_wan": f.cumulative_disbursed_fen,
            "outstanding_wan": f.covered_fen,
            "max_liability": self.max_liability_fen,
            "compensation_paid_amount": self.compensation_paid_fen,
        }


@dataclass(frozen=True)
class ByBank:
    year: int
    scope: Scope
    generated_at: datetime
    lines: list[BankLine]

    @property
    def totals(self) -> Figures:
        return total(line.figures for line in self.lines)

    @property
    def max_liability_fen(self) -> int:
        return sum(line.max_liability_fen for line in self.lines)

    @property
    def compensation_paid_fen(self) -> int:
        return sum(line.compensation_paid_fen for line in self.lines)

    def totals_row(self) -> dict[str, Any]:
        t = self.totals
        return {
            **t.row(),
            "loans_disbursed_wan": t.disbursed_fen,
            "cumulative_disbursed_wan": t.cumulative_disbursed_fen,
            "outstanding_wan": t.covered_fen,
            "max_liability": self.max_liability_fen,
            "compensation_paid_amount": self.compensation_paid_fen,
        }


def _bank_lines(
    session: Session, year: int, scope: Scope, before: LedgerFigures, after: LedgerFigures
) -> list[BankLine]:
    start, end = year_bounds(year)
    rows = repository.bank_figures(session, start=start, end=end, bank_id=scope.bank_id)
    figures = {int(r.bank_id): Figures.of(r) for r in rows}
    paid = {
        b: after.comp_paid_fen(b) - before.comp_paid_fen(b)
        for b in set(after.comp_paid_by_bank) | set(before.comp_paid_by_bank)
        if scope.bank_id is None or b == scope.bank_id
    }
    ids = sorted({b for b, f in figures.items() if not f.is_zero} | {b for b, v in paid.items() if v})
    banks = repository.banks_by_id(session, ids)
    lines = [BankLine(banks[b], figures.get(b, Figures()), paid.get(b, 0)) for b in ids]
    return sorted(lines, key=lambda line: line.bank.code)


def by_bank(session: Session, scope: Scope, year: int) -> ByBank:
    _, end = year_bounds(year)
    before, after = ledger_at(session, date(year - 1, 12, 31), end)
    return ByBank(year, scope, now(), _bank_lines(session, year, scope, before, after))


# --- summary -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    year: int
    scope: Scope
    generated_at: datetime
    figures: Figures
    max_liability_fen: int
    enterprises_served: int
    first_time_borrowers: int
    cumulative_enterprises_served: int
    before: LedgerFigures  # the fund at the end of the previous year
    after: LedgerFigures  # the fund at the end of the year
    lines: list[BankLine]  # the figures by bank that the totals add up (the by-bank report's lines)

    @property
    def average_loan_fen(self) -> int | None:
        """Amount disbursed in the year ÷ loans disbursed in the year, half-up to the fen."""
        f = self.figures
        if not f.loans_started:
            return None
        return int((Decimal(f.disbursed_fen) / f.loans_started).quantize(Decimal(1), rounding=ROUND_HALF_UP))

    def contributions_in_year(self, source: str) -> int:
        return self.after.contributions_fen[source] - self.before.contributions_fen[source]

    @property
    def fund_contributed_in_year_fen(self) -> int:
        return self.after.fund_size_fen - self.before.fund_size_fen

    @property
    def compensation_paid_in_year_fen(self) -> int:
        b = self.scope.bank_id
        return self.after.comp_paid_fen(b) - self.before.comp_paid_fen(b)

    @property
    def recoveries_recognised_in_year_fen(self) -> int:
        b = self.scope.bank_id
        return self.after.recoveries_recognised_fen(b) - self.before.recoveries_recognised_fen(b)

    @property
    def recoveries_received_in_year_fen(self) -> int:
        b = self.scope.bank_id
        return self.after.recoveries_received_fen(b) - self.before.recoveries_received_fen(b)

    @property
    def npl_ratio(self) -> Decimal | None:
        return self.figures.npl_ratio

    @property
    def leverage(self) -> Decimal | None:
        if not self.scope.shows_fund:
            return None
        return ratio(self.figures.covered_fen, self.after.balance_fen)

    @property
    def coverage_ratio(self) -> Decimal | None:
        if not self.scope.shows_fund:
            return None
        return ratio(self.after.balance_fen, self.max_liability_fen)


def summary(session: Session, scope: Scope, year: int) -> Summary:
    _, end = year_bounds(year)
    before, after = ledger_at(session, date(year - 1, 12, 31), end)
    lines = _bank_lines(session, year, scope, before, after)
    served, first_time, ever = repository.year_counts(session, year=year, bank_id=scope.bank_id)
    return Summary(
        year=year,
        scope=scope,
        generated_at=now(),
        figures=total(line.figures for line in lines),
        max_liability_fen=sum(line.max_liability_fen for line in lines),
        enterprises_served=served,
        first_time_borrowers=first_time,
        cumulative_enterprises_served=ever,
        before=before,
        after=after,
        lines=lines,
    )


# --- by industry, by grade ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupLine:
    key: str
    name_zh: str
    name_en: str
    figures: Figures


@dataclass(frozen=True)
class Breakdown:
    year: int
    scope: Scope
    generated_at: datetime
    lines: list[GroupLine]

    @property
    def totals(self) -> Figures:
        return total(line.figures for line in self.lines)


def _breakdown(
    session: Session, scope: Scope, year: int, column: Any, names: Mapping[str, tuple[str, str]]
) -> Breakdown:
    start, end = year_bounds(year)
    rows = repository.portfolio_figures(
        session, PortfolioMonthly, [column], start=start, end=end, bank_id=scope.bank_id
    )
    lines = []
    for r in rows:
        key, figures = str(r[0]), Figures.of(r)
        if figures.is_zero:
            continue
        zh, en = names.get(key, (key, key))
        lines.append(GroupLine(key, zh, en, figures))
    return Breakdown(year, scope, now(), lines)


def by_industry(session: Session, scope: Scope, year: int) -> Breakdown:
    return _breakdown(session, scope, year, PortfolioMonthly.industry, INDUSTRY_NAMES)


def by_grade(session: Session, scope: Scope, year: int) -> Breakdown:
    return _breakdown(session, scope, year, PortfolioMonthly.grade, GRADE_NAMES)


# --- by month ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthLine:
    month: date  # first day
    loans_started: int
    disbursed_fen: int
    principal_repaid_fen: int
    interest_repaid_fen: int
    covered_fen: int  # stocks at the month's end
    overdue_fen: int
    npl_fen: int
    compensated_fen: int

    def row(self) -> dict[str, Any]:
        return {
            "month": f"{self.month:%Y-%m}",
            "loans_disbursed_count": self.loans_started,
            "loans_disbursed_amount": self.disbursed_fen,
            "principal_repaid_amount": self.principal_repaid_fen,
            "interest_repaid_amount": self.interest_repaid_fen,
            "outstanding_principal": self.covered_fen,
            "overdue_principal": self.overdue_fen,
            "npl_principal": self.npl_fen,
            "compensated_principal": self.compensated_fen,
        }


@dataclass(frozen=True)
class ByMonth:
    year: int
    scope: Scope
    generated_at: datetime
    lines: list[MonthLine]  # twelve

    def totals_row(self) -> dict[str, Any]:
        """Flows summed over the months; stocks are not additive and are left out."""
        return {
            "loans_disbursed_count": sum(m.loans_started for m in self.lines),
            "loans_disbursed_amount": sum(m.disbursed_fen for m in self.lines),
            "principal_repaid_amount": sum(m.principal_repaid_fen for m in self.lines),
            "interest_repaid_amount": sum(m.interest_repaid_fen for m in self.lines),
        }


def by_month(session: Session, scope: Scope, year: int) -> ByMonth:
    start, end = year_bounds(year)
    stocks = [0, 0, 0, 0]
    flows: dict[date, tuple[int, int, int, int]] = {}
    deltas: dict[date, tuple[int, int, int, int]] = {}
    for r in repository.monthly_series(session, end=end, bank_id=scope.bank_id):
        d = (int(r.covered), int(r.overdue), int(r.npl), int(r.compensated))
        if r.month < start:
            stocks = [a + b for a, b in zip(stocks, d, strict=True)]
        else:
            deltas[r.month] = d
            flows[r.month] = (
                int(r.loans_started),
                int(r.disbursed),
                int(r.principal_repaid),
                int(r.interest_repaid),
            )
    lines = []
    for m in range(1, 13):
        month = date(year, m, 1)
        stocks = [a + b for a, b in zip(stocks, deltas.get(month, (0, 0, 0, 0)), strict=True)]
        lines.append(MonthLine(month, *flows.get(month, (0, 0, 0, 0)), *stocks))
    return ByMonth(year, scope, now(), lines)


# --- the fund month by month --------------------------------------------------------------------------


@dataclass(frozen=True)
class FundMonth:
    """The fund's movements in a month and its position at the month's end (fen)."""

    month: date  # first day
    contributions_fen: int
    compensation_paid_fen: int
    recoveries_received_fen: int
    other_fen: int  # interest on the fund's account and reversals: the rest of the balance's change
    fund_size_fen: int
    balance_fen: int
    reserved_fen: int

    @property
    def available_fen(self) -> int:
        return self.balance_fen - self.reserved_fen

    def row(self) -> dict[str, Any]:
        return {
            "month": f"{self.month:%Y-%m}",
            "contributions": self.contributions_fen,
            "compensation_paid": self.compensation_paid_fen,
            "recoveries_received": self.recoveries_received_fen,
            "other": self.other_fen,
            "fund_size": self.fund_size_fen,
            "fund_balance": self.balance_fen,
            "reserved_balance": self.reserved_fen,
            "available_balance": self.available_fen,
        }


@dataclass(frozen=True)
class FundFlows:
    year: int
    scope: Scope
    generated_at: datetime
    opening_balance_fen: int  # at the end of the previous year
    lines: list[FundMonth]  # twelve

    def totals_row(self) -> dict[str, Any]:
        """Flows summed over the months (positions are not additive and are left out)."""
        keys = ("contributions_fen", "compensation_paid_fen", "recoveries_received_fen", "other_fen")
        return {k.removesuffix("_fen"): sum(getattr(m, k) for m in self.lines) for k in keys}


def fund_flows(session: Session, scope: Scope, year: int) -> FundFlows:
    """The fund's ledger at the end of each month of `year` and what moved it in between: contributions,
    compensation paid, recoveries received (all banks: the fund is the bureau's), from one pass over the
    ledger entries up to the year's end."""
    days = [date(year - 1, 12, 31)] + [
        (date(year, m + 1, 1) if m < 12 else date(year + 1, 1, 1)) - timedelta(days=1) for m in range(1, 13)
    ]
    at = ledger_at(session, *days)
    lines = []
    for m, (before, after) in enumerate(pairwise(at), start=1):
        contributed = after.fund_size_fen - before.fund_size_fen
        paid = after.comp_paid_fen(None) - before.comp_paid_fen(None)
        received = after.recoveries_received_fen(None) - before.recoveries_received_fen(None)
        change = after.balance_fen - before.balance_fen
        lines.append(
            FundMonth(
                month=date(year, m, 1),
                contributions_fen=contributed,
                compensation_paid_fen=paid,
                recoveries_received_fen=received,
                other_fen=change - contributed + paid - received,
                fund_size_fen=after.fund_size_fen,
                balance_fen=after.balance_fen,
                reserved_fen=after.reserved_fen,
            )
        )
    return FundFlows(year, scope, now(), at[0].balance_fen, lines)


# --- aging -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgingBucket:
    key: str
    label_zh: str
    label_en: str
    min_days: int
    max_days: int | None
    loans: int
    principal_fen: int


@dataclass(frozen=True)
class Aging:
    as_of: date
    scope: Scope
    generated_at: datetime
    covered_fen: int  # covered outstanding now: the base of each bucket's share
    buckets: list[AgingBucket]
    detail: Iterable[dict[str, Any]] | None  # lazy: streamed in CSV

    @property
    def loans(self) -> int:
        return sum(b.loans for b in self.buckets)

    @property
    def principal_fen(self) -> int:
        return sum(b.principal_fen for b in self.buckets)


def bucket_labels(bounds: Sequence[int]) -> list[tuple[str, str, str, int, int | None]]:
    """(key, zh, en, min days, max days) for each bucket: 1–30, 31–60, 61–90, over 90 by default."""
    out: list[tuple[str, str, str, int, int | None]] = []
    low = 1
    for high in bounds:
        out.append((f"{low}-{high}", f"{low}–{high}天", f"{low}–{high} days", low, high))
        low = high + 1
    last = bounds[-1]
    out.append((f"{last}+", f"{last}天以上", f"over {last} days", last + 1, None))
    return out


def aging(
    session: Session,
    settings: Settings,
    scope: Scope,
    *,
    today: date,
    as_of: date | None,
    detail: bool,
    stream: bool,
) -> Aging:
    """Overdue and non-performing loans by days past due, from the loans' current state.

    The loans table holds each loan's latest state and days past due (as last reported), not its history,
    so the report is for today only; an earlier date is refused rather than approximated.
    """
    if as_of is not None and as_of != today:
        msg = f"The aging report is kept for the current date only ({today}); omit as_of"
        raise field_error("as_of_not_supported", msg, "as_of")
    bounds = settings.aging_bucket_days
    labels = bucket_labels(bounds)
    counts = repository.aging_buckets(session, bounds, bank_id=scope.bank_id)
    buckets = [
        AgingBucket(key, zh, en, lo, hi, *counts.get(i, (0, 0)))
        for i, (key, zh, en, lo, hi) in enumerate(labels)
    ]
    stocks = portfolio.stocks_by_bank(session, None, scope.bank_id)
    covered = sum(s.covered_fen for s in stocks.values())
    rows: Iterable[dict[str, Any]] | None = None
    if detail:
        keys = [lab[0] for lab in labels]
        stmt = repository.aging_detail_stmt(bounds, bank_id=scope.bank_id)

        def convert(m: Mapping[str, Any]) -> dict[str, Any]:
            return {
                "loan_id": m["loan_id"],
                "bank_code": m["bank_code"],
                "bank_loan_ref": m["bank_loan_ref"],
                "credit_code": m["credit_code"],
                "enterprise_name": m["enterprise_name"],
                "state": str(m["state"]),
                "days_past_due": int(m["days_past_due"]),
                "bucket": keys[int(m["bucket"])],
                "outstanding_principal": int(m["outstanding_fen"]),
                "npl_since": m["npl_since"],
                "last_reported_on": m["last_event_date"],
            }

        rows = register_rows(session, stmt, convert, stream=stream)
    return Aging(today, scope, now(), covered, buckets, rows)


# --- registers -------------------------------------------------------------------------------------------


def register_rows(
    session: Session,
    stmt: repository.AnySelect,
    convert: Any,
    *,
    stream: bool,
) -> Iterable[dict[str, Any]]:
    """The rows of a register: a lazy stream (CSV), or a list of at most JSON_MAX_ROWS (JSON, xlsx).

    xlsx is built inside the request and JSON is one document, so they hold the rows; beyond the cap the
    answer is 409 `report_too_large` (narrow the filters or take the CSV, which streams any length).
    """
    if stream:
        return (convert(m) for m in repository.stream(session, stmt))
    found = repository.first_rows(session, stmt, JSON_MAX_ROWS + 1)
    if len(found) > JSON_MAX_ROWS:
        raise Conflict(
            f"The register has more than {JSON_MAX_ROWS} rows; narrow the filters or use format=csv",
            code="report_too_large",
        )
    return [convert(m) for m in found]


class RunningTotals(Mapping[str, Any]):
    """Totals accumulated while the rows stream past (`feed`), read once the rows are exhausted: the
    export kit writes the totals row after the last row, so it always equals their sum."""

    def __init__(self, columns: Sequence[str]) -> None:
        self._sums: dict[str, int] = dict.fromkeys(columns, 0)
        self.count = 0

    def feed(self, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            self.count += 1
            for k in self._sums:
                if row[k] is not None:
                    self._sums[k] += row[k]
            yield row

    def __getitem__(self, key: str) -> Any:
        return self._sums[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sums)

    def __len__(self) -> int:
        return len(self._sums)


@dataclass(frozen=True)
class Discrepancies:
    scope: Scope
    month_end: date | None
    kind: str | None
    generated_at: datetime
    rows: Iterable[dict[str, Any]]


def _discrepancy_row(m: Mapping[str, Any]) -> dict[str, Any]:
    reported, derived = m["reported_outstanding_fen"], m["derived_outstanding_fen"]
    return {
        "id": m["id"],
        "report_id": m["report_id"],
        "report_version": m["report_version"],
        "month_end": m["month_end"],
        "bank_id": m["bank_id"],
        "bank_code": m["bank_code"],
        "loan_id": m["loan_id"],
        "bank_loan_ref": m["bank_loan_ref"],
        "kind": m["kind"],
        "reported_outstanding": reported,
        "derived_outstanding": derived,
        "difference": None if reported is None or derived is None else reported - derived,
        "reported_days_past_due": m["reported_days_past_due"],
    }


def discrepancies(
    session: Session, scope: Scope, *, month_end: date | None, kind: str | None, stream: bool
) -> Discrepancies:
    stmt = repository.discrepancies_stmt(bank_id=scope.bank_id, month_end=month_end, kind=kind)
    rows = register_rows(session, stmt, _discrepancy_row, stream=stream)
    return Discrepancies(scope, month_end, kind, now(), rows)


# --- claims ------------------------------------------------------------------------------------------

CLAIM_AMOUNTS = (
    "principal_at_default",
    "claimed",
    "approved",
    "reserved",
    "paid",
    "recovered_gross",
    "recovery_costs",
    "recoveries_fund_share",
    "remitted",
    "receivable",
)


def claim_row(m: Mapping[str, Any]) -> dict[str, Any]:
    """One line of the claims register (amounts in fen)."""
    npl_since, paid_on = m["npl_since"], m["paid_on"]
    state = ClaimState(m["state"])
    return {
        "claim_id": m["claim_id"],
        "bank_code": m["bank_code"],
        "loan_id": m["loan_id"],
        "bank_loan_ref": m["bank_loan_ref"],
        "credit_code": m["credit_code"],
        "enterprise_name": m["enterprise_name"],
        "state": state.value,
        "npl_since": npl_since,
        "early_default": bool(m["early_default"]),
        "filed_on": m["filed_on"],
        "reviewed_on": m["reviewed_on"],
        "paid_on": paid_on,
        "days_default_to_payment": None
        if npl_since is None or paid_on is None
        else (paid_on - npl_since).days,
        "principal_at_default": int(m["principal_fen"]),
        "fund_share": m["fund_share"],
        "claimed": int(m["claimed_fen"]),
        "approved": m["approved_fen"],
        "reserved": int(m["reserved_fen"]),
        "paid": m["paid_fen"],
        "recovered_gross": int(m["recovered_gross_fen"]),
        "recovery_costs": int(m["recovery_costs_fen"]),
        "recoveries_fund_share": int(m["recovered_share_fen"]),
        "remitted": int(m["remitted_fen"]),
        "receivable": int(m["recovered_share_fen"]) - int(m["remitted_fen"]),
        "collection_closed_on": m["collection_closed_on"],
        "reason": m["rejection_reason"] if state is ClaimState.rejected else m["reduction_reason"],
    }


@dataclass(frozen=True)
class StateLine:
    """The claims in one state: how many, and their amounts (fen)."""

    state: ClaimState
    count: int
    claimed_fen: int
    approved_fen: int
    paid_fen: int


@dataclass(frozen=True)
class Claims:
    scope: Scope
    state: ClaimState | None
    generated_at: datetime
    rows: Iterable[dict[str, Any]]
    by_state: list[StateLine]


def claims_by_state(session: Session, scope: Scope, *, state: ClaimState | None = None) -> list[StateLine]:
    """Claims per state, every state listed (0 when none), in the workflow's order."""
    found = {
        ClaimState(state_): StateLine(ClaimState(state_), int(count), int(claimed), int(approved), int(paid))
        for state_, count, claimed, approved, paid in repository.claims_by_state(
            session, bank_id=scope.bank_id, state=state
        )
    }
    states = list(ClaimState) if state is None else [state]
    return [found.get(s, StateLine(s, 0, 0, 0, 0)) for s in states]


def claims_register(session: Session, scope: Scope, *, state: ClaimState | None, stream: bool) -> Claims:
    """Every claim (of the bank, for a bank's key), oldest filing first, with its recoveries, and the
    claims counted per state."""
    stmt = repository.claims_stmt(bank_id=scope.bank_id, state=state)
    rows = register_rows(session, stmt, claim_row, stream=stream)
    return Claims(scope, state, now(), rows, claims_by_state(session, scope, state=state))


# --- one enterprise ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnterpriseHistory:
    credit_code: str
    scope: Scope
    generated_at: datetime
    enterprise: Any  # Enterprise | None (an application may name a code not in the registry)
    applications: list[dict[str, Any]]
    loans: list[dict[str, Any]]
    claims: list[dict[str, Any]]


def _application_row(app: Any, bank_code: str) -> dict[str, Any]:
    return {
        "application_no": app.application_no,
        "application_date": app.application_date,
        "bank_code": bank_code,
        "status": str(app.status),
        "ineligible_reason": None if app.ineligible_reason is None else str(app.ineligible_reason),
        "requested_amount": app.requested_amount_fen,
        "term_months": app.term_months,
        "score": app.score,
        "grade": app.grade,
        "credit_line": app.credit_line_fen,
        "decision_date": app.decision_date,
        "approved_amount": app.approved_amount_fen,
        "approved_rate_pct": app.approved_rate_pct,
        "rejection_reason": app.rejection_reason,
    }


def _loan_row(loan: Any, bank_code: str) -> dict[str, Any]:
    return {
        "loan_id": loan.id,
        "bank_code": bank_code,
        "bank_loan_ref": loan.bank_loan_ref,
        "grade": loan.grade,
        "contract_amount": loan.contract_amount_fen,
        "annual_rate_pct": loan.annual_rate_pct,
        "start_date": loan.start_date,
        "maturity_date": loan.maturity_date,
        "state": str(loan.state),
        "disbursed_amount": loan.disbursed_fen,
        "principal_repaid_amount": loan.principal_repaid_fen,
        "interest_repaid_amount": loan.interest_repaid_fen,
        "outstanding_principal": loan.outstanding_fen,
        "days_past_due": loan.days_past_due,
        "first_disbursed_on": loan.first_disbursed_on,
        "npl_since": loan.npl_since,
        "settled_on": loan.settled_on,
        "compensated_on": loan.compensated_on,
        "written_off_on": loan.written_off_on,
    }


def enterprise_history(session: Session, scope: Scope, credit_code: str) -> EnterpriseHistory:
    """Every application, loan and claim of one enterprise; a bank sees only those with it, and an
    enterprise it has none with is 404 to it."""
    enterprise = repository.enterprise_by_code(session, credit_code)
    apps = repository.applications_of(session, credit_code, bank_id=scope.bank_id)
    loans = [] if enterprise is None else repository.loans_of(session, enterprise.id, bank_id=scope.bank_id)
    claims = (
        []
        if enterprise is None
        else [
            claim_row(m)
            for m in repository.first_rows(
                session,
                repository.claims_stmt(bank_id=scope.bank_id, enterprise_id=enterprise.id),
                JSON_MAX_ROWS,
            )
        ]
    )
    if not apps and not loans and not claims and (enterprise is None or scope.bank is not None):
        raise NotFound(f"No history of enterprise {credit_code}", code="enterprise_not_found")
    return EnterpriseHistory(
        credit_code=credit_code,
        scope=scope,
        generated_at=now(),
        enterprise=enterprise,
        applications=[_application_row(a, code) for a, code in apps],
        loans=[_loan_row(loan, code) for loan, code in loans],
        claims=claims,
    )
