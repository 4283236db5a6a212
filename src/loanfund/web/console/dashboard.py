"""The dashboard at `/console/?year=`: the fund's headline figures and four charts for a calendar year.

Every figure and series comes from the functions behind the API's reports, so a chart and its report can
never disagree: the figures are the summary's (`/reports/summary`), the fund's balance over the year the
fund flows' (`/reports/fund-flows`), disbursements by month `/reports/by-month` for the year and the one
before, NPL ratios by bank `/reports/by-bank`, claims by state the claims register's `by_state`, breakers
`/fund/breakers`. The series are inlined in the page as JSON (no script runs inline: CSP), and drawn by
ECharts from `static/console/console.js`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy.orm import Session

from loanfund.claims.models import ClaimState
from loanfund.core.clock import business_today
from loanfund.core.config import Settings
from loanfund.core.db import DbSession
from loanfund.fund import breakers
from loanfund.fund.exposure import headroom
from loanfund.reports import repository as report_repository
from loanfund.reports import service as reports
from loanfund.reports.schemas import SummaryRead
from loanfund.web.messages import N_
from loanfund.web.templating import gettext_for

from .auth import PATH, Reader, settings_of
from .render import page

router = APIRouter(prefix=PATH, include_in_schema=False)

_WAN_FEN = Decimal(1_000_000)  # fen in 万元
_CENT = Decimal("0.01")
STATE_LABELS = {
    ClaimState.submitted: N_("awaiting review"),
    ClaimState.approved: N_("approved, awaiting payout"),
    ClaimState.rejected: N_("rejected"),
    ClaimState.paid: N_("paid"),
}


def wan(fen: int) -> str:
    """Fen as 万元 with two places, a plain decimal string (no float) for a chart."""
    return str((Decimal(fen) / _WAN_FEN).quantize(_CENT, rounding=ROUND_HALF_UP))


def pct(value: Decimal | None) -> str | None:
    return None if value is None else str((value * 100).quantize(_CENT, rounding=ROUND_HALF_UP))


def default_year(session: Session, settings: Settings) -> tuple[int, list[int]]:
    """This year, or the last year the programme lent in if that is earlier; and the years to offer."""
    today = business_today(settings).year
    span = report_repository.lending_years(session)
    if span is None:
        return today, [today]
    first, last = span
    return min(today, last), list(range(max(today, last), first - 1, -1))


def dashboard_data(session: Session, settings: Settings, year: int, gettext: Any) -> dict[str, Any]:
    """What the dashboard shows for `year`: the figures, the chart series, the breakers."""
    scope = reports.Scope(None)
    summary = reports.summary(session, scope, year)
    read = SummaryRead.of(summary)
    flows = reports.fund_flows(session, scope, year)
    this_year, last_year = reports.by_month(session, scope, year), reports.by_month(session, scope, year - 1)
    banks = summary.lines  # the by-bank report's lines, already read for the summary
    by_state = reports.claims_by_state(session, scope)
    charts = {
        "fund_balance": {
            "months": [f"{m.month:%m}" for m in flows.lines],
            "series": {
                gettext("Fund balance"): [wan(m.balance_fen) for m in flows.lines],
                gettext("Contributions"): [wan(m.contributions_fen) for m in flows.lines],
                gettext("Compensation paid"): [wan(m.compensation_paid_fen) for m in flows.lines],
                gettext("Recoveries received"): [wan(m.recoveries_received_fen) for m in flows.lines],
            },
        },
        "disbursements_by_month": {
            "months": [f"{m.month:%m}" for m in this_year.lines],
            "series": {
                str(year): [wan(m.disbursed_fen) for m in this_year.lines],
                str(year - 1): [wan(m.disbursed_fen) for m in last_year.lines],
            },
        },
        "npl_by_bank": {
            "banks": [line.bank.code for line in banks],
            "ratios": [pct(line.figures.npl_ratio) or "0.00" for line in banks],
            "warning": pct(settings.breaker_warning_ratio),
            "suspend": pct(settings.breaker_suspend_ratio),
            "labels": {"warning": gettext("warning"), "suspend": gettext("suspension")},
        },
        "claims_by_state": {
            "states": [gettext(STATE_LABELS[line.state]) for line in by_state],
            "counts": [line.count for line in by_state],
        },
    }
    balance_fen, covered_fen = summary.after.balance_fen, summary.figures.covered_fen
    return {
        "year": year,
        "summary": read,
        "headroom": headroom(balance_fen, covered_fen, settings),
        "leverage_cap": settings.leverage_cap,
        "charts": charts,
        "chart_json": {k: Markup(orjson.dumps(v).decode().replace("</", "<\\/")) for k, v in charts.items()},
        "by_state": by_state,
        "bank_lines": banks,
        "breakers": breakers.list_breakers(session),
        "programme": breakers.programme_ratio(session, business_today(settings)),
        "state_labels": STATE_LABELS,
    }


@router.get("/")
def dashboard(
    request: Request,
    session: DbSession,
    user: Reader,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> Response:
    settings = settings_of(request)
    fallback, years = default_year(session, settings)
    chosen = year or fallback
    if chosen not in years:
        years = sorted({*years, chosen}, reverse=True)
    data = dashboard_data(session, settings, chosen, gettext_for(request))
    ids = [b.bank_id for b in data["breakers"] if b.bank_id is not None]
    bank_names = report_repository.banks_by_id(session, ids)
    return page(request, user, "console/dashboard.html", {**data, "years": years, "bank_names": bank_names})
