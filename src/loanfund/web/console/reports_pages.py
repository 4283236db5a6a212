"""Every report of `/api/v1/reports` with its filters, shown as a table, with xlsx and csv downloads.

A report here is the same `reports.service` function and the same layout (`reports.sheets`) as the API's
download: the page renders the layout's sections as HTML tables, the buttons download the very workbook
or CSV the API sends. (The console reads registers whole, at most `JSON_MAX_ROWS` rows, as the API's JSON
does; the API's CSV streams any length.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.banks.models import Bank
from loanfund.claims.models import ClaimState
from loanfund.core.clock import business_today
from loanfund.core.config import Settings
from loanfund.core.db import DbSession
from loanfund.core.errors import InvalidInput, NotFound
from loanfund.reports import service, sheets
from loanfund.reports.export import ColumnKind, Report, ReportFormat, render
from loanfund.web.messages import N_

from .auth import PATH, Reader, settings_of
from .dashboard import default_year
from .render import page

router = APIRouter(prefix=f"{PATH}/reports", include_in_schema=False)
SHOWN_ROWS = 500  # rows shown on the page; the downloads hold them all


@dataclass(frozen=True)
class Params:
    year: int
    bank_id: int | None
    state: ClaimState | None
    detail: bool
    month_end: date | None
    kind: str | None
    credit_code: str | None


Build = Callable[[Session, Settings, service.Scope, Params], tuple[Report, str]]


@dataclass(frozen=True)
class Spec:
    title: str
    filters: tuple[str, ...]  # year, bank, state, detail, month_end, kind
    build: Build


def _yearly(
    compute: Callable[[Session, service.Scope, int], Any], layout: Callable[[Any], Report], name: str
) -> Build:
    def build(session: Session, settings: Settings, scope: service.Scope, p: Params) -> tuple[Report, str]:
        return layout(compute(session, scope, p.year)), sheets.stem(name, scope, p.year)

    return build


def _aging(session: Session, settings: Settings, scope: service.Scope, p: Params) -> tuple[Report, str]:
    data = service.aging(
        session, settings, scope, today=business_today(settings), as_of=None, detail=p.detail, stream=False
    )
    return sheets.aging_report(data), sheets.stem("逾期账龄", scope, data.as_of)


def _claims(session: Session, settings: Settings, scope: service.Scope, p: Params) -> tuple[Report, str]:
    data = service.claims_register(session, scope, state=p.state, stream=False)
    parts = [] if p.state is None else [p.state.value]
    return sheets.claims_report(data), sheets.stem("代偿台账", scope, *parts)


def _discrepancies(
    session: Session, settings: Settings, scope: service.Scope, p: Params
) -> tuple[Report, str]:
    data = service.discrepancies(session, scope, month_end=p.month_end, kind=p.kind, stream=False)
    parts = [] if p.month_end is None else [p.month_end]
    return sheets.discrepancies_report(data), sheets.stem("报送差异", scope, *parts)


def _history(session: Session, settings: Settings, scope: service.Scope, p: Params) -> tuple[Report, str]:
    if not p.credit_code:
        raise InvalidInput("Give a credit code", code="validation_error", details=[{"field": "credit_code"}])
    data = service.enterprise_history(session, scope, p.credit_code)
    return sheets.enterprise_history_report(data), sheets.stem("企业档案", scope, p.credit_code)


YEAR_BANK = ("year", "bank")
REPORTS: dict[str, Spec] = {
    "summary": Spec(
        N_("Summary of the year"), YEAR_BANK, _yearly(service.summary, sheets.summary_report, "统计汇总")
    ),
    "by-bank": Spec(
        N_("By partner bank"), YEAR_BANK, _yearly(service.by_bank, sheets.by_bank_report, "分银行统计")
    ),
    "by-industry": Spec(
        N_("By industry"),
        YEAR_BANK,
        _yearly(service.by_industry, lambda d: sheets.breakdown_report(d, industry=True), "分行业统计"),
    ),
    "by-grade": Spec(
        N_("By grade"),
        YEAR_BANK,
        _yearly(service.by_grade, lambda d: sheets.breakdown_report(d, industry=False), "分等级统计"),
    ),
    "by-month": Spec(
        N_("By month"), YEAR_BANK, _yearly(service.by_month, sheets.by_month_report, "分月统计")
    ),
    "fund-flows": Spec(
        N_("The fund month by month"),
        ("year",),
        _yearly(service.fund_flows, sheets.fund_flows_report, "基金分月收支"),
    ),
    "aging": Spec(N_("Aging of overdue loans"), ("bank", "detail"), _aging),
    "claims": Spec(N_("Claims register"), ("bank", "state"), _claims),
    "status-discrepancies": Spec(
        N_("Status-report discrepancies"), ("bank", "month_end", "kind"), _discrepancies
    ),
    "enterprise-history": Spec(N_("One enterprise's history"), ("credit_code",), _history),
}


Year = Annotated[int | None, Query(ge=2000, le=2100)]
BankId = Annotated[int | None, Query(ge=1)]
State = Annotated[str, Query(max_length=16)]
Kind = Annotated[str, Query(max_length=32)]
Code = Annotated[str, Query(max_length=18)]


def report_params(
    request: Request,
    session: DbSession,
    year: Year = None,
    bank_id: BankId = None,
    state: State = "",
    detail: bool = False,
    month_end: date | None = None,
    kind: Kind = "",
    credit_code: Code = "",
) -> Params:
    """A report's filters from the query (every report takes the ones it names; the year defaults to
    the dashboard's)."""
    return Params(
        year=year or default_year(session, settings_of(request))[0],
        bank_id=bank_id,
        state=ClaimState(state) if state in {s.value for s in ClaimState} else None,
        detail=detail,
        month_end=month_end,
        kind=kind or None,
        credit_code=credit_code.strip().upper() or None,
    )


ReportParams = Annotated[Params, Depends(report_params)]


def _scope(session: Session, spec: Spec, params: Params) -> service.Scope:
    if params.bank_id is None or "bank" not in spec.filters:
        return service.Scope(None)
    bank = session.get(Bank, params.bank_id)
    if bank is None:
        raise NotFound("No such bank", code="bank_not_found")
    return service.Scope(bank)


def _spec(name: str) -> Spec:
    spec = REPORTS.get(name)
    if spec is None:
        raise NotFound("No such report", code="not_found")
    return spec


def _cell(kind: ColumnKind, number_format: str | None, value: Any) -> tuple[str, Any]:
    """How a value is shown: (formatter name for the template, value)."""
    if value is None:
        return "none", None
    if kind is ColumnKind.amount:
        return "money", value
    if kind is ColumnKind.wan:
        return "wan", value
    if kind is ColumnKind.ratio:
        return ("percent" if number_format and "%" in number_format else "plain"), value
    if kind is ColumnKind.date:
        return "date", value
    return "plain", value


@router.get("")
def report_index(request: Request, user: Reader) -> Response:
    return page(request, user, "console/reports.html", {"reports": REPORTS})


@router.get("/{name}")
def report_page(
    request: Request, session: DbSession, user: Reader, name: str, params: ReportParams
) -> Response:
    spec = _spec(name)
    settings = settings_of(request)
    report = None
    if name != "enterprise-history" or params.credit_code:
        report, _ = spec.build(session, settings, _scope(session, spec, params), params)
    sections = []
    for section in report.sections if report else []:
        rows = list(section.rows)
        cells = [
            [_cell(c.kind, c.number_format, r.get(c.key)) for c in section.columns] for r in rows[:SHOWN_ROWS]
        ]
        totals = None
        if section.totals is not None:
            totals = [_cell(c.kind, c.number_format, section.totals.get(c.key)) for c in section.columns]
        sections.append({"section": section, "cells": cells, "count": len(rows), "totals": totals})
    query = {
        k: v
        for k, v in {
            "year": params.year if "year" in spec.filters else None,
            "bank_id": params.bank_id,
            "state": params.state.value if params.state else None,
            "detail": "true" if params.detail else None,
            "month_end": params.month_end,
            "kind": params.kind,
            "credit_code": params.credit_code,
        }.items()
        if v is not None
    }
    _, years = default_year(session, settings)
    return page(
        request,
        user,
        "console/report.html",
        {
            "name": name,
            "spec": spec,
            "params": params,
            "report": report,
            "sections": sections,
            "shown_rows": SHOWN_ROWS,
            "download": f"{PATH}/reports/{name}/download?" + urlencode(query),
            "years": sorted({*years, params.year}, reverse=True),
            "banks": list(session.scalars(select(Bank).order_by(Bank.code))),
            "states": [s.value for s in ClaimState],
        },
    )


@router.get("/{name}/download")
def report_download(
    request: Request,
    session: DbSession,
    user: Reader,
    name: str,
    params: ReportParams,
    format: ReportFormat = ReportFormat.xlsx,
) -> Response:
    spec = _spec(name)
    if format is ReportFormat.json:
        raise InvalidInput("Download as xlsx or csv", code="validation_error")
    settings = settings_of(request)
    report, stem = spec.build(session, settings, _scope(session, spec, params), params)
    return render(report, format, stem)
