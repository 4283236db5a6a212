"""The monthly risk rating of each partner bank, 1 (least risk) to 5, from what the system already holds.

Seven measures of a bank at a month's end (higher is worse for each; the window is the last
`rating_window_months` months, the month rated included):

* `npl_ratio` — (non-performing + compensated not written off) ÷ (covered + compensated), as the circuit
  breaker reads it, at the month's end. Loans behind it: those non-performing or compensated then.
* `compensation_rate` — compensation paid to the bank in the window ÷ its average covered outstanding at
  the window's month ends. Loans: those whose claims were paid in the window.
* `early_default_rate` — of the loans first disbursed in the window and the `early_default_months`
  before it, the share that became non-performing within `early_default_months` of their first
  disbursement. Loans: the early defaults.
* `report_discrepancies` — discrepancies per loan line in the status reports due in the window (those for
  the window's months before the one rated: a month's report is due after it ends). Loans: those named.
* `report_lateness` — of those months (from the programme's first status report and the bank's first
  loan on), how many reports came more than `rating_report_due_days` after the month's end, or not at all.
* `growth` — covered outstanding at the month's end ÷ a window earlier, less one (fast growth is a risk:
  new, unseasoned loans). Loans: those first disbursed in the window.
* `concentration` — the Herfindahl–Hirschman index of covered outstanding by industry (Σ share²).
  Loans: the covered loans of the largest industry.

Each measure is scored twice, 1–5: against the peers (the other banks rated that month: 1 + 4 × the share
of them doing better) and against its thresholds (settings); the two are weighted by
`rating_peer_weight`. The rating is the weighted mean of the measures' scores (weights: settings; a
measure a bank has nothing for is left out) cut by `rating_bands`; it names the measure that weighed most.

Ratings are computed for a month once every bank with loans then has filed its status report for it
(`month_closed`, called as the month's last report is submitted), or by `loanfund ratings compute`,
and stored: later events do not change them. Recomputing a month is an explicit, audited action.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session

from loanfund import rules
from loanfund.audit.service import Actor, record
from loanfund.banks.models import Bank
from loanfund.core.clock import business_today
from loanfund.core.config import RATING_MEASURES, Settings
from loanfund.core.errors import Conflict, InvalidInput, NotFound
from loanfund.core.money import yuan_str
from loanfund.fund import service as fund_service
from loanfund.portfolio import service as portfolio
from loanfund.portfolio.models import PortfolioMonthly
from loanfund.reports import repository as reports
from loanfund.risk import calibration, repository
from loanfund.risk.book import BAD, BookLoan, book_at
from loanfund.risk.models import BankRating
from loanfund.risk.schemas import BankRatingRead, MeasureRead, MonthRatingsRead, RatingPoint
from loanfund.rules import add_months, npl_ratio
from loanfund.status_reports.repository import closed_through_many

LABELS: dict[str, tuple[str, str]] = {
    "npl_ratio": ("不良率", "NPL ratio"),
    "compensation_rate": ("代偿率", "Compensation rate"),
    "early_default_rate": ("早期违约率", "Early default rate"),
    "report_discrepancies": ("报送差异率", "Status-report discrepancies per loan"),
    "report_lateness": ("迟报漏报月数", "Late or missing status reports"),
    "growth": ("在保余额增速", "Growth of covered outstanding"),
    "concentration": ("行业集中度", "Industry concentration (HHI)"),
}
assert tuple(LABELS) == RATING_MEASURES
LOANS_SHOWN = 200
_PLACES = Decimal("0.0001")
_SCORE = Decimal("0.01")
ADVISORY_KEY = 0x6C66_7261_7465  # serialises the month-close check of concurrent status reports


def _q(value: Decimal) -> Decimal:
    return value.quantize(_PLACES, rounding=ROUND_HALF_UP)


def month_end(month: date) -> date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def month_label(month: date) -> str:
    return f"{month:%Y-%m}"


@dataclass
class Measure:
    key: str
    value: Decimal | None
    numerator: str | None = None
    denominator: str | None = None
    loans: list[tuple[int, str]] = field(default_factory=list)  # (id, the bank's reference)
    months: list[dict[str, Any]] = field(default_factory=list)  # report_lateness: late or missing
    percentile: Decimal | None = None
    peer_score: Decimal | None = None
    threshold_score: int | None = None
    score: Decimal | None = None
    weight: Decimal = Decimal(0)

    def row(self) -> dict[str, Any]:
        """As stored and answered (`schemas.MeasureRead`)."""
        zh, en = LABELS[self.key]
        loans = sorted(self.loans, key=lambda loan: loan[1])
        return {
            "key": self.key,
            "label_zh": zh,
            "label_en": en,
            "value": None if self.value is None else str(self.value),
            "numerator": self.numerator,
            "denominator": self.denominator,
            "percentile": None if self.percentile is None else str(self.percentile),
            "peer_score": None if self.peer_score is None else str(self.peer_score),
            "threshold_score": self.threshold_score,
            "score": None if self.score is None else str(self.score),
            "weight": str(_q(self.weight)),
            "loan_count": len(loans),
            "loans": [
                {"id": i, "bank_loan_ref": ref, "href": f"/api/v1/loans/{i}"}
                for i, ref in loans[:LOANS_SHOWN]
            ],
            "months": self.months,
        }


# --- the measures ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """The month rated and its window."""

    month: date  # first day
    window_months: int

    @property
    def end(self) -> date:
        return month_end(self.month)

    @property
    def first(self) -> date:
        """First day of the window."""
        return add_months(self.month, 1 - self.window_months)

    @property
    def before(self) -> date:
        """The last day before the window."""
        return self.first - timedelta(days=1)

    @property
    def month_starts(self) -> list[date]:
        return [add_months(self.first, k) for k in range(self.window_months)]

    @property
    def reports_due(self) -> list[date]:
        """Month ends whose status reports are due by the end of the month rated: the window shifted
        back by one month."""
        return [month_end(add_months(m, -1)) for m in self.month_starts]


def measures(session: Session, settings: Settings, month: date) -> dict[int, list[Measure]]:
    """The measures of every bank with loans covered or compensated at the month's end (bank id → the
    measures in `RATING_MEASURES` order), not yet scored."""
    p = Period(month, settings.rating_window_months)
    stocks = portfolio.stocks_by_bank(session, as_of=p.end)
    rated = sorted(b for b, s in stocks.items() if s.covered_fen + s.compensated_fen > 0)
    if not rated:
        return {}
    book = book_at(session, rules.loan_rules(settings), p.end)
    by_bank: dict[int, list[BookLoan]] = {}
    for loan in book:
        by_bank.setdefault(loan.bank_id, []).append(loan)
    earlier = portfolio.stocks_by_bank(session, as_of=p.before)
    paid_loans = _group(repository.claims_paid_between(session, p.first, p.end))
    early = _early_defaults(session, settings, p)
    due = _reports_due(session, settings, p, rated)
    discrepancies = _group(repository.discrepancy_loans(session, min(p.reports_due), max(p.reports_due)))
    new_loans = _group(
        (r.bank_id, r.id, r.bank_loan_ref)
        for r in repository.loans_first_disbursed_between(session, p.first, p.end)
    )
    out = {}
    for b in rated:
        s, loans = stocks[b], by_bank.get(b, [])
        bad = s.npl_fen + s.compensated_fen
        out[b] = [
            Measure(
                "npl_ratio",
                npl_ratio(s.npl_fen, s.compensated_fen, s.covered_fen),
                yuan_str(bad),
                yuan_str(s.covered_fen + s.compensated_fen),
                [(loan.id, loan.bank_loan_ref) for loan in loans if loan.state in BAD],
            ),
            _compensation_rate(session, p, b, paid_loans.get(b, [])),
            early[b] if b in early else Measure("early_default_rate", None),
            _discrepancy_rate(due.get(b, []), discrepancies.get(b, [])),
            _lateness(settings, due.get(b, [])),
            _growth(s.covered_fen, earlier.get(b, portfolio.Stocks()).covered_fen, new_loans.get(b, [])),
            _concentration(session, p, b, loans),
        ]
    return out


def _group(rows: Iterable[Any]) -> dict[int, list[tuple[int, str]]]:
    """(bank id, loan id, reference) rows → bank id → distinct (loan id, reference)."""
    out: dict[int, dict[int, str]] = {}
    for bank_id, loan_id, ref in rows:
        out.setdefault(bank_id, {})[loan_id] = ref
    return {b: sorted(loans.items()) for b, loans in out.items()}


def _compensation_rate(session: Session, p: Period, bank_id: int, loans: list[tuple[int, str]]) -> Measure:
    paid = fund_service.compensation_paid_between(session, p.first, p.end, bank_id=bank_id)
    rows = reports.monthly_series(session, end=p.end, bank_id=bank_id)  # by month, oldest first
    levels, stock, i = [], 0, 0
    for start in p.month_starts:  # covered outstanding at the end of each month of the window
        while i < len(rows) and rows[i].month <= start:
            stock += int(rows[i].covered)
            i += 1
        levels.append(stock)
    average = Decimal(sum(levels)) / len(levels)
    value = _q(Decimal(paid) / average) if average > 0 else None
    return Measure("compensation_rate", value, yuan_str(paid), yuan_str(int(average)), loans)


def _early_defaults(session: Session, settings: Settings, p: Period) -> dict[int, Measure]:
    """As the loans were at the month's end (`rules.is_early_default` on the non-performing dates reported
    by then), not their `early_default` flag today: a rating does not change with later events."""
    lr = rules.loan_rules(settings)
    start = add_months(p.first, -lr.early_default_months)
    crossed = calibration.npl_dates(session, settings.npl_days, p.end)
    cohort: dict[int, list[Any]] = {}
    for row in repository.loans_first_disbursed_between(session, start, p.end):
        cohort.setdefault(row.bank_id, []).append(row)
    out = {}
    for b, rows in cohort.items():
        early = [
            (r.id, r.bank_loan_ref)
            for r in rows
            if r.id in crossed
            and crossed[r.id] <= p.end
            and rules.is_early_default(r.first_disbursed_on, crossed[r.id], lr)
        ]
        value = _q(Decimal(len(early)) / len(rows))
        out[b] = Measure("early_default_rate", value, str(len(early)), str(len(rows)), early)
    return out


@dataclass(frozen=True)
class _Due:
    month_end: date
    report: Any  # the status report, or None


def _reports_due(
    session: Session, settings: Settings, p: Period, banks: Sequence[int]
) -> dict[int, list[_Due]]:
    """Per bank: the month ends of the window whose reports were due, with the report if any. Reporting
    is due from the programme's first status report, and from the month of the bank's first loan."""
    started = repository.first_report_month_end(session)
    if started is None:
        return {}
    first_loans = repository.first_disbursement_by_bank(session)
    reports_of = {
        (r.bank_id, r.month_end): r
        for r in repository.reports_between(session, min(p.reports_due), max(p.reports_due))
    }
    out: dict[int, list[_Due]] = {}
    for b in banks:
        since = first_loans.get(b)
        if since is None:
            continue
        out[b] = [
            _Due(end, reports_of.get((b, end)))
            for end in p.reports_due
            if end >= started and end >= month_end(since)
        ]
    return out


def _discrepancy_rate(due: list[_Due], loans: list[tuple[int, str]]) -> Measure:
    filed = [d.report for d in due if d.report is not None]
    lines = sum(r.line_count for r in filed)
    found = sum(r.discrepancy_count for r in filed)
    value = _q(Decimal(found) / lines) if lines else None
    return Measure("report_discrepancies", value, str(found), str(lines), loans)


def _lateness(settings: Settings, due: list[_Due]) -> Measure:
    if not due:
        return Measure("report_lateness", None)
    zone = ZoneInfo(settings.timezone)
    months = []
    for d in due:
        if d.report is None:
            months.append({"month_end": d.month_end.isoformat(), "status": "missing", "submitted_on": None})
            continue
        submitted = d.report.submitted_at.astimezone(zone).date()
        if submitted > d.month_end + timedelta(days=settings.rating_report_due_days):
            months.append(
                {
                    "month_end": d.month_end.isoformat(),
                    "status": "late",
                    "submitted_on": submitted.isoformat(),
                }
            )
    return Measure(
        "report_lateness", _q(Decimal(len(months))), str(len(months)), str(len(due)), months=months
    )


def _growth(now_fen: int, before_fen: int, loans: list[tuple[int, str]]) -> Measure:
    value = _q(Decimal(now_fen) / before_fen - 1) if before_fen > 0 else None
    return Measure("growth", value, yuan_str(now_fen), yuan_str(before_fen), loans)


def _concentration(session: Session, p: Period, bank_id: int, loans: list[BookLoan]) -> Measure:
    rows = reports.portfolio_figures(
        session, PortfolioMonthly, [PortfolioMonthly.industry], start=p.month, end=p.end, bank_id=bank_id
    )
    covered = {str(r.industry): int(r.covered) for r in rows if int(r.covered) > 0}
    total = sum(covered.values())
    if not total:
        return Measure("concentration", None)
    hhi = sum(((Decimal(c) / total) ** 2 for c in covered.values()), Decimal(0))
    top = max(covered, key=lambda k: (covered[k], k))
    behind = [(loan.id, loan.bank_loan_ref) for loan in loans if loan.covered and loan.industry == top]
    return Measure("concentration", _q(hhi), yuan_str(covered[top]), yuan_str(total), behind)


# --- scoring --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scored:
    bank_id: int
    rating: int
    score: Decimal
    driver: str
    measures: list[Measure]


def score(settings: Settings, found: dict[int, list[Measure]]) -> list[Scored]:
    """Score every measure against the peers and its thresholds, and rate each bank."""
    peer_weight = settings.rating_peer_weight
    for position, key in enumerate(RATING_MEASURES):
        spec = settings.rating_measures[key]
        values = [v for ms in found.values() if (v := ms[position].value) is not None]
        others = len(values) - 1
        for ms in found.values():
            m = ms[position]
            m.weight = spec.weight
            mine = m.value
            if mine is None:
                continue
            better = sum(1 for v in values if v < mine)
            m.percentile = _q(Decimal(better) / others) if others else Decimal("0.0000")
            m.peer_score = (1 + 4 * m.percentile).quantize(_SCORE, rounding=ROUND_HALF_UP)
            m.threshold_score = 1 + sum(1 for t in spec.thresholds if mine >= t)
            mixed = peer_weight * m.peer_score + (1 - peer_weight) * m.threshold_score
            m.score = mixed.quantize(_SCORE, rounding=ROUND_HALF_UP)
    out = []
    for b, ms in sorted(found.items()):
        scored = [m for m in ms if m.score is not None and m.weight > 0]
        weight = sum(m.weight for m in scored)
        if not weight:
            continue
        composite = (sum(m.weight * (m.score or 0) for m in scored) / weight).quantize(
            _SCORE, rounding=ROUND_HALF_UP
        )
        rating = 1 + sum(1 for cut in settings.rating_bands if composite >= cut)
        driver = max(scored, key=lambda m: (m.weight * ((m.score or 1) - 1), -RATING_MEASURES.index(m.key)))
        out.append(Scored(b, rating, composite, driver.key, ms))
    return out


def reason(params: dict[str, Any], driver: dict[str, Any], peers: int) -> str:
    """The driving measure in words, by the parameters the month was rated with."""
    key = driver["key"]
    words = f"{LABELS[key][1]} {driver['value']}"
    if driver["percentile"] is not None and peers > 1:
        better = round(Decimal(driver["percentile"]) * (peers - 1))
        words += f": {better} of {peers - 1} peers do better"
    level = driver["threshold_score"]
    if level is not None and level > 1:
        cut = params["measures"][key]["thresholds"][level - 2]
        words += f"; at or above threshold {level - 1} ({cut})"
    return words


def parameters(settings: Settings) -> dict[str, Any]:
    """The settings a month is rated with, kept with its ratings."""
    return {
        "window_months": settings.rating_window_months,
        "early_default_months": settings.early_default_months,
        "report_due_days": settings.rating_report_due_days,
        "peer_weight": str(settings.rating_peer_weight),
        "bands": [str(b) for b in settings.rating_bands],
        "measures": {
            k: {"weight": str(m.weight), "thresholds": [str(t) for t in m.thresholds]}
            for k, m in settings.rating_measures.items()
        },
    }


# --- computing and storing ----------------------------------------------------------------------------


def compute_month(
    session: Session,
    settings: Settings,
    actor: Actor,
    month: date,
    *,
    recompute: bool = False,
    reason_text: str | None = None,
    today: date | None = None,
) -> list[BankRating]:
    """Rate every bank for `month` (any day of it) and store the ratings. A month already rated is
    refused (409 `ratings_exist`) unless `recompute`, which needs a reason and is audited with the
    ratings it replaces. Nothing is stored for a month in which no bank had loans."""
    month = month.replace(day=1)
    today = today or business_today(settings)
    if month_end(month) > today:
        raise InvalidInput(
            f"{month_label(month)} has not ended yet",
            code="month_not_over",
            details=[{"field": "month", "message": "the month must be over"}],
        )
    existing = repository.ratings_of_month(session, month)
    if existing and not recompute:
        raise Conflict(
            f"{month_label(month)} is rated already; a recompute must be asked for, with a reason",
            code="ratings_exist",
        )
    if recompute and not (reason_text and reason_text.strip()):
        raise InvalidInput(
            "A recompute needs a reason",
            code="reason_required",
            details=[{"field": "reason", "message": "required for a recompute"}],
        )
    scored = score(settings, measures(session, settings, month))
    banks = repository.banks(session, [s.bank_id for s in scored] + [r.bank_id for r in existing])
    before = {banks[r.bank_id].code: r.rating for r in existing}
    if existing:
        repository.delete_ratings_of_month(session, month)
        session.flush()
    params = parameters(settings)
    rows = [
        BankRating(
            bank_id=s.bank_id,
            month=month,
            rating=s.rating,
            score=s.score,
            driver=s.driver,
            peers=len(scored),
            measures=[m.row() for m in s.measures],
            parameters=params,
            computed_by=actor.name,
        )
        for s in scored
    ]
    session.add_all(rows)
    session.flush()
    if rows or existing:
        record(
            session,
            actor,
            "ratings.recompute" if existing else "ratings.compute",
            "bank_ratings",
            month_label(month),
            before=before or None,
            after={banks[r.bank_id].code: r.rating for r in rows},
            reason=reason_text if existing else None,
        )
    return rows


def month_closed(session: Session, settings: Settings, actor: Actor, month_end_day: date) -> list[BankRating]:
    """A bank's status report has closed `month_end_day`'s month for it: if every bank with loans then
    has now closed it and it is not rated yet, rate it. Called by the status report service."""
    month = month_end_day.replace(day=1)
    if session.get_bind().dialect.name == "postgresql":
        # two banks closing the month at once: the second waits, then sees the first's report
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_KEY})
    if repository.month_has_ratings(session, month):
        return []
    stocks = portfolio.stocks_by_bank(session, as_of=month_end_day)
    needed = [b for b, s in stocks.items() if s.covered_fen + s.compensated_fen > 0]
    closed = closed_through_many(session, needed)
    if not needed or any(c is None or c < month_end_day for c in closed.values()):
        return []
    return compute_month(session, settings, actor, month, today=month_end_day)


# --- reading ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RatingView:
    rating: BankRating
    bank: Bank
    trend: list[tuple[date, int]]  # the twelve months up to the rating's, oldest first


@dataclass(frozen=True)
class MonthTable:
    month: date | None
    peers: int
    parameters: dict[str, Any]
    rows: list[RatingView]


def _trends(session: Session, rows: Sequence[BankRating]) -> dict[tuple[int, date], list[tuple[date, int]]]:
    if not rows:
        return {}
    first = add_months(min(r.month for r in rows), -11)
    last = max(r.month for r in rows)
    history: dict[int, list[BankRating]] = {}
    for r in repository.ratings_between(session, first, last, {r.bank_id for r in rows}):
        history.setdefault(r.bank_id, []).append(r)
    return {
        (r.bank_id, r.month): [
            (h.month, h.rating)
            for h in history.get(r.bank_id, [])
            if add_months(r.month, -11) <= h.month <= r.month
        ]
        for r in rows
    }


def _views(session: Session, rows: Sequence[BankRating]) -> list[RatingView]:
    banks = repository.banks(session, {r.bank_id for r in rows})
    trends = _trends(session, rows)
    return [RatingView(r, banks[r.bank_id], trends[(r.bank_id, r.month)]) for r in rows]


def month_table(session: Session, month: date | None = None, *, bank_id: int | None = None) -> MonthTable:
    """Every bank's rating for `month` (default: the latest month rated), each with its trend; `bank_id`
    narrows to one bank (a bank's own view). 404 `ratings_not_found` for a month not rated."""
    if month is None:
        month = repository.latest_rated_month(session)
        if month is None:
            return MonthTable(None, 0, {}, [])
    month = month.replace(day=1)
    everyone = repository.ratings_of_month(session, month)
    if not everyone:
        raise NotFound(
            f"{month_label(month)} has no ratings: a month is rated once every bank with loans has filed "
            "its status report for it, or with `loanfund ratings compute`",
            code="ratings_not_found",
        )
    rows = [r for r in everyone if bank_id is None or r.bank_id == bank_id]
    return MonthTable(month, everyone[0].peers, everyone[0].parameters, _views(session, rows))


def rated_months(session: Session) -> list[date]:
    """Every month rated, newest first (a month picker's choices)."""
    return repository.rated_months(session)


def read(view: RatingView) -> BankRatingRead:
    r = view.rating
    driver = next(m for m in r.measures if m["key"] == r.driver)
    return BankRatingRead(
        bank_id=view.bank.id,
        bank_code=view.bank.code,
        bank_name=view.bank.name,
        month=month_label(r.month),
        rating=r.rating,
        score=str(r.score),
        driver=r.driver,
        reason=reason(r.parameters, driver, r.peers),
        peers=r.peers,
        measures=[MeasureRead.model_validate(m) for m in r.measures],
        trend=[RatingPoint(month=month_label(m), rating=v) for m, v in view.trend],
        computed_at=r.computed_at,
        computed_by=r.computed_by,
    )


def read_table(table: MonthTable) -> MonthRatingsRead:
    return MonthRatingsRead(
        month=None if table.month is None else month_label(table.month),
        peers=table.peers,
        parameters=table.parameters,
        ratings=[read(v) for v in table.rows],
    )


def bank_history(
    session: Session, bank_id: int, *, before: date | None = None, limit: int | None = None
) -> list[RatingView]:
    """A bank's ratings, newest first (`before`: months before it), each with its trend."""
    return _views(session, repository.bank_history(session, bank_id, before=before, limit=limit))
