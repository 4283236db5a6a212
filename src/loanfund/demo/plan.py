"""The demo history as a plan: every contribution, application, loan event, claim and status report from
the programme's launch in 2017 to the end of 2021, dated. Pure — no database; `history.py` replays the
plan through the services, which check every rule again.

The shape of the history (the seed district's figures, DOMAIN.md):

* The fund: city 40% / district 60% each January (March at the launch), 5,000,000 in 2017–2020 and
  5,000,000 in 2021, so 10,000,000 at the end of 2021. Each year's money arrives before that year's
  lending starts, because covered principal may never exceed 10× the fund's balance.
* Lending: a fixed number of loans and a fixed total per year (`YEARS`: 64 loans and 95,060,000 yuan in
  2021, 237,000,000 from 2017 to 2021), amounts in whole 万元 up to the 2017 table's highest line, each
  loan disbursed in full on its start date. Terms of 6, 9 or 12 months; interest monthly on the start
  date's day at LPR (the benchmark rate before 2019-08-20) plus a spread of 0–100 bp, actual/360;
  principal at maturity, in quarterly parts, or a month or two early. Lending is heavier in the first
  half of the year, so outstanding principal at a year's end stays well under the year's lending.
* `FATES`: the loans that go wrong, with their month of the first missed payment fixed so that every
  seed gives the same story — overdue loans that are cured; defaults that become non-performing, are
  claimed by the bank, reviewed by the officer, paid by an approver, sometimes partly recovered (the
  fund's share remitted) and written off when collection closes; and at the end of 2021 one loan in
  each aging bucket (1–30, 31–60, 61–90 days and non-performing, not yet claimed). Defaults are small
  loans at different banks, so no bank's NPL ratio reaches the 8% suspension line.
* Some loans come from applications (evaluated, approved by the bank; one regraded by the officer),
  next to applications that are rejected, ineligible, still pending or approved but not yet lent.
* 2021: every bank files its monthly status report on the last day of each month, a few of them with
  the kind of discrepancy bureau staff follow up (a balance that differs, a loan left out, a loan that is
  not in the programme).

`simulate()` replays the plan's money and loan states without a database and reports the worst leverage
and NPL ratio, so a plan can be checked for any seed in milliseconds.
"""

from __future__ import annotations

import calendar
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from loanfund import rules
from loanfund.applications.evaluation import Indicators, evaluate
from loanfund.core.config import Settings
from loanfund.enterprises.schemas import EnterpriseCreate
from loanfund.rules import add_months

WAN = 1_000_000  # fen in 10,000 yuan (万元)
END = date(2021, 12, 31)  # the history stops at the end of the seed document's year
FIRST_YEAR = 2017

# year: (loans first disbursed in the year, yuan disbursed in the year in 万元)
YEARS: dict[int, tuple[int, int]] = {
    2017: (15, 1_800),
    2018: (26, 3_600),
    2019: (33, 4_200),
    2020: (36, 4_594),
    2021: (64, 9_506),
}

# (value date, source, yuan, budget document)
CONTRIBUTIONS: list[tuple[date, str, int, str]] = [
    (date(2017, 3, 10), "district", 1_800_000, "黔江财预〔2017〕18号"),
    (date(2017, 3, 24), "city", 1_200_000, "渝财教〔2017〕45号"),
    (date(2018, 1, 12), "district", 720_000, "黔江财预〔2018〕6号"),
    (date(2018, 1, 19), "city", 480_000, "渝财教〔2018〕11号"),
    (date(2019, 1, 11), "district", 300_000, "黔江财预〔2019〕5号"),
    (date(2019, 1, 18), "city", 200_000, "渝财教〔2019〕9号"),
    (date(2020, 1, 10), "district", 180_000, "黔江财预〔2020〕4号"),
    (date(2020, 1, 17), "city", 120_000, "渝财教〔2020〕8号"),
    (date(2021, 1, 8), "district", 1_800_000, "黔江财预〔2021〕3号"),
    (date(2021, 1, 15), "city", 1_200_000, "渝财教〔2021〕7号"),
    (date(2021, 2, 26), "district", 1_200_000, "黔江财预〔2021〕21号"),
    (date(2021, 3, 5), "city", 800_000, "渝财教〔2021〕33号"),
]
# The first day a year's loans may start: after that year's first money has arrived.
LENDING_FROM = {2017: date(2017, 4, 1), 2018: date(2018, 1, 22), 2019: date(2019, 1, 21)}
LENDING_FROM |= {2020: date(2020, 1, 20), 2021: date(2021, 1, 18)}
LENDING_UNTIL_DAY = (12, 20)  # and no loan starts after 20 December

# How the year's loans spread over the months (busier in spring, quieter before the year's end).
MONTH_WEIGHTS = [5, 7, 13, 13, 12, 12, 10, 9, 9, 8, 6, 4]
AMOUNTS_WAN = [50, 60, 80, 100, 100, 120, 150, 150, 180, 200, 200, 240, 300]
MIN_WAN, MAX_WAN = 30, 300
LEVERAGE_TARGET = Decimal("9.2")  # the plan keeps covered principal within 9.2× the balance (cap: 10×)
SPREADS_BP = [0, 0, 25, 50, 50, 75, 100]
TERMS = [12, 9, 6]
STYLES = ["bullet", "amortizing", "early"]
# Terms and repayment styles by year: shorter and more often amortised while the fund was small.
TERM_WEIGHTS = {
    2017: [40, 30, 30],
    2018: [40, 30, 30],
    2019: [40, 30, 30],
    2020: [40, 30, 30],
    2021: [70, 20, 10],
}
STYLE_WEIGHTS = {
    2017: [45, 40, 15],
    2018: [45, 40, 15],
    2019: [45, 40, 15],
    2020: [45, 40, 15],
    2021: [70, 20, 10],
}
BANK_WEIGHTS = {"CQRCB_QJ": 34, "CCB_QJ": 24, "ICBC_QJ": 22, "CQTGB_QJ": 20}
BANK_PREFIX = {"CQRCB_QJ": "CQRCB", "CCB_QJ": "CCB", "ICBC_QJ": "ICBC", "CQTGB_QJ": "CQTGB"}


@dataclass(frozen=True)
class Fate:
    """A loan that does not simply pay as agreed. It starts in one of `months` of `year` on a day from
    the 3rd to the 26th, runs 12 months and first misses the payment due `miss_after` months in."""

    kind: str  # cured | default | overdue | npl | override (a performing loan from a regraded application)
    year: int
    months: tuple[int, ...]
    amounts_wan: tuple[int, ...]
    miss_after: int = 0
    recovery: bool = False  # the bank recovers part of a compensated loan
    remit: bool = False  # ... and remits the fund's share
    close: bool = False  # collection closes: the loan is written off


FATES: list[Fate] = [
    Fate("cured", 2017, (5, 6, 7), (80, 100, 120), 3),
    Fate("cured", 2018, (3, 4), (100, 150), 4),
    Fate("default", 2018, (6, 7), (20, 30), 5, recovery=True, remit=True, close=True),
    Fate("cured", 2019, (4, 5, 6), (80, 120), 2),
    Fate("cured", 2019, (2, 3), (150, 200), 6),
    Fate("default", 2019, (3, 4), (20, 30), 4, close=True),
    Fate("cured", 2020, (3, 4, 5), (100, 120), 5),
    Fate("default", 2020, (2, 3), (20, 30), 3, recovery=True, remit=True, close=True),
    Fate("cured", 2021, (2, 3), (150, 200), 3),
    Fate("cured", 2021, (5, 6), (100, 120), 2),
    Fate("default", 2021, (1,), (20, 30), 2, recovery=True),  # recovered, not yet remitted at the year's end
    Fate("default", 2021, (2, 3), (20, 30), 3),
    Fate("npl", 2021, (3,), (30, 40), 6),
    Fate("overdue", 2021, (4,), (50, 60), 6),  # misses in October: 61-90 days at the year's end
    Fate("overdue", 2021, (5,), (60, 80), 6),  # November: 31-60
    Fate("overdue", 2021, (6,), (80, 100), 6),  # December: 1-30
    Fate("override", 2021, (7, 8), (30, 40)),
]
APPLICATION_LOANS = {2020: 5, 2021: 16}  # loans (besides the override) that come from applications

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何罗"
_GIVEN = ["伟", "芳", "军", "敏", "静", "强", "磊", "洋", "艳", "勇", "杰", "娟", "涛", "明", "超", "霞"]


# --- the plan -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Installment:
    day: date
    principal_fen: int
    interest_fen: int


@dataclass(frozen=True)
class ApplicationPlan:
    """An enterprise's application and the bank's decision on it."""

    key: str
    credit_code: str
    bank: str
    submitted: date
    requested_fen: int
    term_months: int
    indicators: Indicators
    contact: tuple[str, str]
    grade: str | None  # as the evaluation will give it
    override: tuple[str, str, date] | None = None  # (grade, reason, day) an officer puts in force
    decision: date | None = None
    approve: tuple[int, int, Decimal] | None = None  # (amount fen, term months, rate)
    reject: str | None = None


@dataclass
class LoanPlan:
    ref: str
    bank: str
    year: int
    amount_fen: int
    start: date
    term_months: int
    rate_pct: Decimal
    style: str  # bullet | amortizing | early
    fate: Fate | None = None
    credit_code: str = ""
    application: ApplicationPlan | None = None
    early_months: int = 0  # repaid in full this many months before maturity
    noise: int = 0  # seeds the loan's own timings (late payments, claims), drawn from the plan's rng
    schedule: list[Installment] = field(default_factory=list)

    @property
    def maturity(self) -> date:
        return add_months(self.start, self.term_months)


@dataclass(frozen=True)
class Contribute:
    day: date
    source: str
    amount_fen: int
    doc_no: str


@dataclass(frozen=True)
class Apply:
    day: date
    application: ApplicationPlan


@dataclass(frozen=True)
class Override:
    day: date
    key: str
    grade: str
    reason: str


@dataclass(frozen=True)
class Decide:
    day: date
    application: ApplicationPlan


@dataclass(frozen=True)
class Lend:
    day: date
    loan: LoanPlan


@dataclass(frozen=True)
class Repay:
    day: date
    loan_ref: str
    event_ref: str
    principal_fen: int
    interest_fen: int


@dataclass(frozen=True)
class Delinquent:
    day: date
    loan_ref: str
    event_ref: str
    days_past_due: int


@dataclass(frozen=True)
class ClaimStep:
    """file | approve | pay | recover | remit | close, on the claim of `loan_ref`."""

    day: date
    step: str
    loan_ref: str
    ref: str = ""
    gross_fen: int = 0
    costs_fen: int = 0


@dataclass(frozen=True)
class StatusReport:
    day: date
    bank: str
    quirk: str | None = None  # balance_mismatch | missing_from_report | unknown_loan


Action = Contribute | Apply | Override | Decide | Lend | Repay | Delinquent | ClaimStep | StatusReport
# Within a day: money in first, then the banks' events, claims, applications, new loans; reports last.
_RANK: dict[type, int] = {
    Contribute: 0,
    Repay: 1,
    Delinquent: 2,
    ClaimStep: 3,
    Apply: 4,
    Override: 5,
    Decide: 6,
    Lend: 7,
    StatusReport: 9,
}


@dataclass
class Plan:
    loans: list[LoanPlan]
    applications: list[ApplicationPlan]
    actions: list[Action]


# --- helpers --------------------------------------------------------------------------------------


def _weekday_in(rng: random.Random, year: int, month: int, lo: int, hi: int, after: date) -> date:
    days = [
        date(year, month, d)
        for d in range(lo, min(hi, calendar.monthrange(year, month)[1]) + 1)
        if date(year, month, d).weekday() < 5 and date(year, month, d) >= after
    ]
    return rng.choice(days)


def _interest(outstanding_fen: int, rate_pct: Decimal, days: int) -> int:
    value = Decimal(outstanding_fen) * rate_pct / 100 * days / 360
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def schedule(loan: LoanPlan) -> list[Installment]:
    """What the borrower owes, month by month: interest on the outstanding principal since the last
    payment (actual/360), principal as the loan's style has it."""
    out: list[Installment] = []
    outstanding = loan.amount_fen
    last = loan.start
    months = loan.term_months - loan.early_months
    for k in range(1, months + 1):
        day = add_months(loan.start, k)
        principal = 0
        if k == months:
            principal = outstanding
        elif loan.style == "amortizing" and k % 3 == 0:
            principal = min(outstanding, max(WAN, (loan.amount_fen // 5) // WAN * WAN))
        out.append(Installment(day, principal, _interest(outstanding, loan.rate_pct, (day - last).days)))
        outstanding -= principal
        last = day
    return out


def _spread_amounts(rng: random.Random, n: int, total_wan: int, fixed: list[int]) -> list[int]:
    """`n` amounts in 万元 (the first ones `fixed`) that add up to `total_wan` exactly."""
    free = [rng.choice(AMOUNTS_WAN) for _ in range(n - len(fixed))]
    diff = total_wan - sum(fixed) - sum(free)
    while diff:
        i = rng.randrange(len(free))
        step = max(-10, min(10, diff))
        if MIN_WAN <= free[i] + step <= MAX_WAN:
            free[i] += step
            diff -= step
    return fixed + free


# --- loans ----------------------------------------------------------------------------------------


def _loans_of_year(rng: random.Random, year: int, lpr: Callable[[date], Decimal]) -> list[LoanPlan]:
    count, total = YEARS[year]
    fates = [f for f in FATES if f.year == year]
    amounts = _spread_amounts(rng, count, total, [rng.choice(f.amounts_wan) for f in fates])
    earliest = LENDING_FROM[year]
    banks, weights = list(BANK_WEIGHTS), list(BANK_WEIGHTS.values())
    loans = []
    for i, amount_wan in enumerate(amounts):
        fate = fates[i] if i < len(fates) else None
        if fate is not None:
            start = _weekday_in(rng, year, rng.choice(fate.months), 3, 26, earliest)
            term, style = 12, "bullet"
        else:
            months = list(range(earliest.month, 13))
            month = rng.choices(months, [MONTH_WEIGHTS[m - 1] for m in months])[0]
            hi = LENDING_UNTIL_DAY[1] if month == LENDING_UNTIL_DAY[0] else 28
            start = _weekday_in(rng, year, month, 1, hi, earliest)
            term = rng.choices(TERMS, TERM_WEIGHTS[year])[0]
            style = rng.choices(STYLES, STYLE_WEIGHTS[year])[0]
        loan = LoanPlan(
            ref="",
            bank=rng.choices(banks, weights)[0],
            year=year,
            amount_fen=amount_wan * WAN,
            start=start,
            term_months=term,
            rate_pct=lpr(start) + Decimal(rng.choice(SPREADS_BP)) / 100,
            style=style,
            fate=fate,
            early_months=rng.choice([1, 2]) if style == "early" else 0,
            noise=rng.getrandbits(32),
        )
        loan.schedule = schedule(loan)
        loans.append(loan)
    return loans


def _outstanding_on(loan: LoanPlan, day: date) -> int:
    if day < loan.start:
        return 0
    return loan.amount_fen - sum(i.principal_fen for i in loan.schedule if i.day <= day)


def _default_dates(loan: LoanPlan) -> tuple[date, date]:
    """When a loan that defaults turns non-performing, and (roughly) until when it counts against its bank:
    until collection closes (within a year) or, if it never closes, to the end of the history."""
    assert loan.fate is not None
    npl = add_months(loan.start, loan.fate.miss_after) + timedelta(days=96)
    return npl, (npl + timedelta(days=365) if loan.fate.close else END)


def _place_defaults(loans: list[LoanPlan]) -> None:
    """Put each loan that will default with the bank whose NPL ratio it raises least while it counts as
    bad (checked month by month), together with the defaults placed before it."""
    bad = [ln for ln in loans if ln.fate is not None and ln.fate.kind in ("default", "npl")]
    good = [ln for ln in loans if ln not in bad]
    placed: list[tuple[str, int, date, date]] = []  # bank, amount, bad from, until
    for loan in sorted(bad, key=lambda ln: ln.start):
        since, until = _default_dates(loan)
        days = [since + timedelta(days=30 * i) for i in range(13) if since + timedelta(days=30 * i) <= until]

        def worst(bank: str, loan: LoanPlan = loan, days: list[date] = days) -> Decimal:
            ratios = []
            for day in days:
                covered = sum(_outstanding_on(ln, day) for ln in good if ln.bank == bank)
                worse = loan.amount_fen + sum(a for b, a, s, e in placed if b == bank and s <= day <= e)
                ratios.append(Decimal(worse) / Decimal(covered + worse))
            return max(ratios)

        loan.bank = min(BANK_WEIGHTS, key=worst)
        placed.append((loan.bank, loan.amount_fen, since, until))


def _repay_early(loans: list[LoanPlan], day: date) -> bool:
    """Relieve the fund on `day`: the performing loan with the most principal outstanding then (and at
    least a month old) is repaid in full on the last instalment date before `day`. False if none can."""
    candidates = [
        ln
        for ln in loans
        if ln.fate is None and add_months(ln.start, 1) <= day and _outstanding_on(ln, day) > 0
    ]
    if not candidates:
        return False
    loan = max(candidates, key=lambda ln: (_outstanding_on(ln, day), ln.ref))
    paid_months = max(k for k in range(1, loan.term_months + 1) if add_months(loan.start, k) <= day)
    loan.early_months = loan.term_months - paid_months
    loan.schedule = schedule(loan)
    return True


def _relieve_leverage(loans: list[LoanPlan], contributions: list[Action]) -> None:
    """Wherever covered principal would come closer to the leverage cap than `LEVERAGE_TARGET`, a
    borrower repays early (as some do), until the whole history stays below it."""
    for _ in range(len(loans)):
        actions = contributions + [a for ln in loans for a in _loan_actions(ln)]
        sim = simulate(_ordered(Plan(loans, [], actions)))
        if sim.max_leverage <= LEVERAGE_TARGET or sim.max_leverage_on is None:
            return
        if not _repay_early(loans, sim.max_leverage_on):
            return


def _number(loans: list[LoanPlan]) -> None:
    """The banks' contract numbers: per bank and year, in the order the loans start."""
    counters: dict[tuple[str, int], int] = {}
    for loan in sorted(loans, key=lambda ln: (ln.start, ln.bank, ln.amount_fen, ln.rate_pct)):
        n = counters[(loan.bank, loan.year)] = counters.get((loan.bank, loan.year), 0) + 1
        loan.ref = f"{BANK_PREFIX[loan.bank]}-{loan.year}-{n:04d}"


@dataclass(frozen=True)
class _Firm:
    credit_code: str
    registered: date | None
    high_tech: tuple[date, date] | None  # certificate valid from, to


def _firms(rows: Iterable[EnterpriseCreate]) -> list[_Firm]:
    out = []
    for r in rows:
        cert = None
        if r.high_tech_cert_expiry is not None:
            issued = add_months(r.high_tech_cert_expiry + timedelta(days=1), -36)
            cert = (issued, r.high_tech_cert_expiry)
        out.append(_Firm(r.credit_code, r.tech_reg_date if r.tech_reg_no else None, cert))
    return out


def _assign_borrowers(rng: random.Random, loans: list[LoanPlan], firms: list[_Firm]) -> None:
    """Each loan to a registered enterprise, registered at least 60 days before the loan starts; about a
    third go back to an earlier borrower whose last loan has ended (renewals). A borrower that
    defaulted, or that is still paying another loan, does not borrow again."""
    registered = [f for f in firms if f.registered is not None]
    busy_until: dict[str, date] = {}
    barred: set[str] = set()
    for loan in sorted(loans, key=lambda ln: (ln.start, ln.ref)):
        ready = loan.start - timedelta(days=60)
        free = [
            f
            for f in registered
            if f.registered is not None
            and f.registered <= ready
            and f.credit_code not in barred
            and busy_until.get(f.credit_code, date.min) < loan.start
        ]
        returning = [f for f in free if f.credit_code in busy_until]
        first_time = [f for f in free if f.credit_code not in busy_until]
        pool = returning if returning and rng.random() < 0.35 else first_time
        firm = rng.choice(pool or free)
        loan.credit_code = firm.credit_code
        busy_until[firm.credit_code] = loan.maturity
        if loan.fate is not None and loan.fate.kind in ("default", "npl"):
            barred.add(firm.credit_code)


# --- applications ---------------------------------------------------------------------------------


def _indicators(rng: random.Random, strength: float, high_tech: bool) -> Indicators:
    staff = rng.randint(20, 300)
    revenue = rng.randint(800, 20_000) * 10_000 * 100
    return Indicators(
        invention_patents=int(rng.randint(0, 6) * strength),
        utility_model_patents=int(rng.randint(1, 8) * strength),
        software_copyrights=int(rng.randint(0, 6) * strength),
        rd_spending_fen=int(revenue * rng.uniform(0.01, 0.07) * strength) // 100 * 100,
        revenue_fen=revenue,
        rd_staff=min(staff, int(staff * rng.uniform(0.08, 0.3) * strength)),
        total_staff=staff,
        senior_talent=int(rng.randint(0, 5) * strength),
        high_tech_certificate=high_tech,
    )


def _contact(rng: random.Random) -> tuple[str, str]:
    name = rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice([1, 2])))
    phone = "1" + rng.choice("3578") + "".join(rng.choice("0123456789") for _ in range(9))
    return name, phone


def _grade_of(settings: Settings, ind: Indicators) -> str | None:
    return evaluate(ind, settings.evaluation_weights, settings.grade_bands).grade


def _evaluated(
    rng: random.Random,
    settings: Settings,
    high_tech: bool,
    fits: Callable[[str | None], bool],
    *,
    weak: bool = False,
) -> tuple[Indicators, str | None]:
    """Indicators whose evaluation gives a grade that `fits`: declarations grow stronger (or, `weak`,
    weaker) after each miss until one fits."""
    strength = 0.6 if weak else 1.0
    for _ in range(200):
        ind = _indicators(rng, strength, high_tech)
        grade = _grade_of(settings, ind)
        if fits(grade):
            return ind, grade
        strength = max(strength - 0.05, 0.0) if weak else min(strength + 0.05, 3.0)
    raise RuntimeError("no declared indicators give the grade wanted")


def _application_for(
    rng: random.Random,
    settings: Settings,
    loan: LoanPlan,
    firm: _Firm,
    lines_on: Callable[[date], Mapping[str, int]],
) -> ApplicationPlan:
    decision = loan.start - timedelta(days=rng.randint(3, 10))
    submitted = decision - timedelta(days=rng.randint(7, 25))
    lines = lines_on(submitted)
    high_tech = firm.high_tech is not None and firm.high_tech[0] <= submitted <= firm.high_tech[1]
    override = None
    if loan.fate is not None and loan.fate.kind == "override":
        ind, grade = _evaluated(rng, settings, high_tech, lambda g: g is None, weak=True)
        reason = (
            "新认定高新技术企业，研发投入以审计报告为准 / newly certified; R&D spending per audited accounts"
        )
        override = ("E", reason, submitted + timedelta(days=2))
    else:
        ind, grade = _evaluated(
            rng, settings, high_tech, lambda g: g is not None and lines[g] >= loan.amount_fen
        )
    requested = loan.amount_fen + rng.choice([0, 0, 0, 10, 20]) * WAN
    line = lines[override[0] if override else grade or "E"]
    return ApplicationPlan(
        key=loan.ref,
        credit_code=firm.credit_code,
        bank=loan.bank,
        submitted=submitted,
        requested_fen=min(requested, line),
        term_months=loan.term_months,
        indicators=ind,
        contact=_contact(rng),
        grade=grade,
        override=override,
        decision=decision,
        approve=(loan.amount_fen, loan.term_months, loan.rate_pct),
    )


def _other_applications(
    rng: random.Random, settings: Settings, firms: list[_Firm], used: set[str], lpr: Callable[[date], Decimal]
) -> list[ApplicationPlan]:
    """Applications that did not become loans by the end of 2021: two rejected by the bank, one scored
    below the lowest grade, one from an enterprise outside the registry, one approved at the year's end
    and not yet lent, one still waiting for the bank."""
    registered = [
        f for f in firms if f.registered and f.registered <= date(2021, 9, 1) and f.credit_code not in used
    ]
    unregistered = [f for f in firms if f.registered is None]
    banks = list(BANK_WEIGHTS)
    eligible: Callable[[str | None], bool] = lambda g: g is not None  # noqa: E731
    specs: list[tuple[str, _Firm, date, Callable[[str | None], bool], date | None, str | None]] = []
    firm = rng.sample(registered, 5)
    specs += [
        (
            "rejected-1",
            firm[0],
            date(2021, 5, 11),
            eligible,
            date(2021, 5, 20),
            "近两年经营性现金流为负，还款来源不足 / negative operating cash flow, no source of repayment",
        ),
        (
            "rejected-2",
            firm[1],
            date(2021, 9, 7),
            eligible,
            date(2021, 9, 16),
            "企业涉及未结诉讼 / pending litigation against the enterprise",
        ),
        ("low-score", firm[2], date(2021, 8, 3), lambda g: g is None, None, None),
        ("unregistered", rng.choice(unregistered), date(2021, 10, 12), eligible, None, None),
        ("approved-not-lent", firm[3], date(2021, 12, 6), eligible, date(2021, 12, 23), None),
        ("pending", firm[4], date(2021, 12, 27), eligible, None, None),
    ]
    out = []
    for key, f, day, fits, decision, reject in specs:
        ind, grade = _evaluated(rng, settings, False, fits, weak=key == "low-score")
        if key == "unregistered":
            grade = None  # outside the registry: refused before any evaluation
        requested = (
            rng.choice([30, 40]) * WAN if key == "approved-not-lent" else rng.choice([50, 100, 150]) * WAN
        )
        approve = None
        if key == "approved-not-lent" and decision is not None:
            approve = (requested, 12, lpr(decision) + Decimal("0.50"))
        out.append(
            ApplicationPlan(
                key=key,
                credit_code=f.credit_code,
                bank=rng.choice(banks),
                submitted=day,
                requested_fen=requested,
                term_months=12,
                indicators=ind,
                contact=_contact(rng),
                grade=grade,
                decision=decision,
                approve=approve,
                reject=reject,
            )
        )
    return out


# --- events ---------------------------------------------------------------------------------------


def _loan_actions(loan: LoanPlan) -> list[Action]:
    rng = random.Random(loan.noise)
    acts: list[Action] = [Lend(loan.start, loan)]
    fate = loan.fate
    miss = fate.miss_after if fate is not None else 0
    n = 0
    for k, inst in enumerate(loan.schedule, start=1):
        if miss and k == miss:
            due = inst.day
            if fate is not None and fate.kind == "cured":
                seen = due + timedelta(days=rng.randint(8, 18))
                paid = seen + timedelta(days=rng.randint(2, 6))
                acts.append(Delinquent(seen, loan.ref, f"{loan.ref}/Q1", (seen - due).days))
                n += 1
                acts.append(
                    Repay(paid, loan.ref, f"{loan.ref}/R{n:02d}", inst.principal_fen, inst.interest_fen)
                )
                acts.append(Delinquent(paid, loan.ref, f"{loan.ref}/Q2", 0))
                continue
            acts += _default_actions(rng, loan, due)
            break
        n += 1
        acts.append(Repay(inst.day, loan.ref, f"{loan.ref}/R{n:02d}", inst.principal_fen, inst.interest_fen))
    return [a for a in acts if a.day <= END]


def _default_actions(rng: random.Random, loan: LoanPlan, due: date) -> list[Action]:
    """From the first missed payment: the bank's delinquency reports as the days past due grow, then —
    once non-performing — the claim, its review and payout, recoveries and the close of collection."""
    assert loan.fate is not None
    fate = loan.fate
    acts: list[Action] = []
    reports = [20, 50, 80, 96]
    for i, dpd in enumerate(reports, start=1):
        acts.append(Delinquent(due + timedelta(days=dpd), loan.ref, f"{loan.ref}/Q{i}", dpd))
    if fate.kind in ("overdue", "npl"):  # still unresolved at the end of the history: a last report then
        reported = [d for d in reports if due + timedelta(days=d) <= END]
        if (END - due).days > max(reported, default=0):
            acts.append(Delinquent(END, loan.ref, f"{loan.ref}/Q{len(reported) + 1}", (END - due).days))
        return acts
    filed = due + timedelta(days=96 + rng.randint(10, 25))
    approved = filed + timedelta(days=rng.randint(5, 12))
    paid = approved + timedelta(days=rng.randint(3, 9))
    acts += [
        ClaimStep(filed, "file", loan.ref),
        ClaimStep(approved, "approve", loan.ref),
        ClaimStep(paid, "pay", loan.ref),
    ]
    done = paid
    if fate.recovery:
        recovered = paid + timedelta(days=rng.randint(60, 120))
        gross = loan.amount_fen * rng.randint(12, 35) // 100 // 10_000 * 10_000
        costs = gross * rng.randint(2, 5) // 100 // 100 * 100
        acts.append(ClaimStep(recovered, "recover", loan.ref, f"{loan.ref}/REC1", gross, costs))
        done = recovered
        if fate.remit:
            done = recovered + timedelta(days=rng.randint(10, 25))
            acts.append(ClaimStep(done, "remit", loan.ref, f"{loan.ref}/REM1"))
    if fate.close:
        acts.append(ClaimStep(done + timedelta(days=rng.randint(30, 90)), "close", loan.ref))
    return acts


def _status_reports(rng: random.Random) -> list[Action]:
    quirks: dict[tuple[str, int], str] = {}
    banks = list(BANK_WEIGHTS)
    for quirk, months in (
        ("balance_mismatch", (4, 5, 6)),
        ("missing_from_report", (8, 9)),
        ("unknown_loan", (10, 11)),
    ):
        quirks[(rng.choice(banks), rng.choice(months))] = quirk
    acts: list[Action] = []
    for month in range(1, 13):
        month_end = date(2021, month, calendar.monthrange(2021, month)[1])
        for bank in banks:
            acts.append(StatusReport(month_end, bank, quirks.get((bank, month))))
    return acts


# --- the whole plan -------------------------------------------------------------------------------


def plan_history(
    rng: random.Random,
    settings: Settings,
    enterprises: list[EnterpriseCreate],
    lpr: Callable[[date], Decimal],
    lines_on: Callable[[date], Mapping[str, int]],
) -> Plan:
    """The dated history. `lpr(day)` is the one-year LPR (or benchmark rate) in force; `lines_on(day)`
    the credit line (fen) by grade."""
    loans = [ln for year in YEARS for ln in _loans_of_year(rng, year, lpr)]
    for i, loan in enumerate(loans):
        loan.ref = f"#{i}"  # until the banks are known
    contributions: list[Action] = [
        Contribute(day, source, yuan * 100, doc) for day, source, yuan, doc in CONTRIBUTIONS
    ]
    _relieve_leverage(loans, contributions)
    _place_defaults(loans)
    _number(loans)
    loans.sort(key=lambda ln: ln.ref)
    firms = _firms(enterprises)
    _assign_borrowers(rng, loans, firms)
    by_code = {f.credit_code: f for f in firms}

    applications: list[ApplicationPlan] = []
    for year, count in APPLICATION_LOANS.items():
        candidates = [ln for ln in loans if ln.year == year and ln.fate is None]
        chosen = rng.sample(candidates, count)
        chosen += [
            ln for ln in loans if ln.year == year and ln.fate is not None and ln.fate.kind == "override"
        ]
        for loan in sorted(chosen, key=lambda ln: ln.ref):
            loan.application = _application_for(rng, settings, loan, by_code[loan.credit_code], lines_on)
            applications.append(loan.application)
    applications += _other_applications(
        rng, settings, firms, {ln.credit_code for ln in loans if ln.year == 2021}, lpr
    )

    actions = list(contributions)
    for app in applications:
        actions.append(Apply(app.submitted, app))
        if app.override is not None:
            grade, reason, day = app.override
            actions.append(Override(day, app.key, grade, reason))
        if app.decision is not None:
            actions.append(Decide(app.decision, app))
    for loan in loans:
        actions += _loan_actions(loan)
    actions += _status_reports(rng)
    return _ordered(Plan(loans=loans, applications=applications, actions=actions))


def _ordered(plan: Plan) -> Plan:
    order = {id(a): i for i, a in enumerate(plan.actions)}
    plan.actions.sort(key=lambda a: (a.day, _RANK[type(a)], order[id(a)]))
    return plan


# --- a check without a database -------------------------------------------------------------------


@dataclass
class Simulation:
    """The worst moments of a plan: leverage (covered ÷ balance) when a loan was disbursed, and each
    bank's NPL ratio after any event."""

    max_leverage: Decimal = Decimal(0)
    max_leverage_on: date | None = None
    max_npl_ratio: Decimal = Decimal(0)
    max_npl_on: tuple[str, date] | None = None
    balance_fen: int = 0
    compensation_by_year: dict[int, int] = field(default_factory=dict)


_STANDING = {
    rules.Standing.performing: "active",
    rules.Standing.overdue: "overdue",
    rules.Standing.non_performing: "npl",
}


def simulate(plan: Plan, fund_share: Decimal = Decimal("0.80"), npl_days: int = 90) -> Simulation:
    """The plan's money and loan states replayed with the programme's rules (`loanfund.rules`)."""
    sim = Simulation()
    loans = {ln.ref: ln for ln in plan.loans}
    outstanding: dict[str, int] = {}
    state: dict[str, str] = {}
    claim: dict[str, tuple[int, int]] = {}  # ref: (principal at default, paid)
    receivable: dict[str, int] = {}
    for a in plan.actions:
        if isinstance(a, Contribute):
            sim.balance_fen += a.amount_fen
        elif isinstance(a, Lend):
            covered = sum(v for r, v in outstanding.items() if state[r] in ("active", "overdue", "npl"))
            covered += a.loan.amount_fen
            lev = rules.ratio(covered, sim.balance_fen) or Decimal(0)
            if lev > sim.max_leverage:
                sim.max_leverage, sim.max_leverage_on = lev, a.day
            outstanding[a.loan.ref] = a.loan.amount_fen
            state[a.loan.ref] = "active"
        elif isinstance(a, Repay):
            outstanding[a.loan_ref] -= a.principal_fen
            if outstanding[a.loan_ref] == 0:
                state[a.loan_ref] = "settled"
        elif isinstance(a, Delinquent):
            state[a.loan_ref] = _STANDING[rules.standing(a.days_past_due, npl_days)]
        elif isinstance(a, ClaimStep):
            if a.step == "file":
                claim[a.loan_ref] = (outstanding[a.loan_ref], 0)
            elif a.step == "pay":
                principal = claim[a.loan_ref][0]
                paid = rules.compensation(principal, fund_share)
                claim[a.loan_ref] = (principal, paid)
                sim.balance_fen -= paid
                sim.compensation_by_year[a.day.year] = sim.compensation_by_year.get(a.day.year, 0) + paid
                state[a.loan_ref] = "compensated"
            elif a.step == "recover":
                principal, paid = claim[a.loan_ref]
                receivable[a.loan_ref] = rules.recovery_share(a.gross_fen - a.costs_fen, paid, principal)
            elif a.step == "remit":
                sim.balance_fen += receivable.pop(a.loan_ref)
            elif a.step == "close":
                state[a.loan_ref] = "written_off"
        if isinstance(a, Lend | Repay | Delinquent | ClaimStep):
            ref = a.loan.ref if isinstance(a, Lend) else a.loan_ref
            bank = loans[ref].bank
            mine = [r for r in outstanding if loans[r].bank == bank]
            npl = sum(outstanding[r] for r in mine if state[r] == "npl")
            compensated = sum(outstanding[r] for r in mine if state[r] == "compensated")
            covered = sum(outstanding[r] for r in mine if state[r] in ("active", "overdue", "npl"))
            ratio = rules.npl_ratio(npl, compensated, covered) or Decimal(0)
            if ratio > sim.max_npl_ratio:
                sim.max_npl_ratio, sim.max_npl_on = ratio, (bank, a.day)
    return sim
