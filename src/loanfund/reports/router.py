"""Oversight reports, each as JSON (`?format=json`, the default), CSV or an Excel workbook.

Bureau staff see the programme and may narrow a report to one bank (`bank_id`); a bank's key gets the
same reports restricted to its own loans (`service.bank_scope`).

Every report runs in one session that lives until the response has been sent (`scope="request"`),
authentication included: a CSV reads its rows while it is being sent, and a second session opened
beside the authenticating one would, on SQLite (one writer, `BEGIN IMMEDIATE`), wait for it.
Reports only read (the key's last-use stamp is the one write).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.orm import Session

from loanfund.claims.models import ClaimState
from loanfund.core.auth import Principal, SettingsDep, authenticate, bearer
from loanfund.core.clock import business_today
from loanfund.core.dates import IsoDate
from loanfund.core.db import get_session
from loanfund.core.errors import Forbidden, responses
from loanfund.core.params import id_query
from loanfund.enterprises.schemas import CREDIT_CODE_PATTERN
from loanfund.reports import service, sheets
from loanfund.reports.export import FormatQuery, ReportFormat, export_responses, render
from loanfund.reports.schemas import (
    AgingRead,
    BreakdownRead,
    ByBankRead,
    ByMonthRead,
    ClaimsRegisterRead,
    DiscrepanciesRead,
    EnterpriseHistoryRead,
    FundFlowsRead,
    SummaryRead,
)

router = APIRouter(prefix="/api/v1/reports", tags=["bureau", "bank"])

ReportSession = Annotated[Session, Depends(get_session, scope="request")]


async def report_caller(
    session: ReportSession,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """Any valid key (bank or bureau staff), checked in the report's own session."""
    return await authenticate(session, settings, credentials)


ReportCaller = Annotated[Principal, Depends(report_caller)]
Year = Annotated[int, Query(ge=2000, le=2100, description="Calendar year", examples=[2021])]
BankFilter = Annotated[
    int | None,
    id_query("Bureau staff: restrict to one bank. A bank's key always gets its own (another → 404)"),
]

_YEARLY = {**responses(401, 404, 422, 503), **export_responses()}
_REGISTER = {**responses(401, 404, 409, 422, 503), **export_responses()}


@router.get(
    "/summary",
    response_model=SummaryRead,
    responses=_YEARLY,
    summary="A calendar year and cumulative to its end: lending, enterprises, the fund, NPL, leverage",
)
def summary(
    session: ReportSession, caller: ReportCaller, fmt: FormatQuery, year: Year, bank_id: BankFilter = None
) -> Response | SummaryRead:
    scope = service.bank_scope(session, caller, bank_id)
    data = service.summary(session, scope, year)
    if fmt is ReportFormat.json:
        return SummaryRead.of(data)
    return render(sheets.summary_report(data), fmt, sheets.stem("统计汇总", scope, year))


@router.get(
    "/by-bank",
    response_model=ByBankRead,
    responses=_YEARLY,
    summary="Lending, repayments and year-end stocks by partner bank, with totals",
)
def by_bank(
    session: ReportSession, caller: ReportCaller, fmt: FormatQuery, year: Year, bank_id: BankFilter = None
) -> Response | ByBankRead:
    scope = service.bank_scope(session, caller, bank_id)
    data = service.by_bank(session, scope, year)
    if fmt is ReportFormat.json:
        return ByBankRead.of(data)
    return render(sheets.by_bank_report(data), fmt, sheets.stem("分银行统计", scope, year))


@router.get(
    "/by-industry",
    response_model=BreakdownRead,
    responses=_YEARLY,
    summary="Lending, repayments and year-end stocks by industry (GB/T 4754 section), with totals",
)
def by_industry(
    session: ReportSession, caller: ReportCaller, fmt: FormatQuery, year: Year, bank_id: BankFilter = None
) -> Response | BreakdownRead:
    scope = service.bank_scope(session, caller, bank_id)
    data = service.by_industry(session, scope, year)
    if fmt is ReportFormat.json:
        return BreakdownRead.of(data)
    return render(sheets.breakdown_report(data, industry=True), fmt, sheets.stem("分行业统计", scope, year))


@router.get(
    "/by-grade",
    response_model=BreakdownRead,
    responses=_YEARLY,
    summary="Lending, repayments and year-end stocks by knowledge-value grade, with totals",
)
def by_grade(
    session: ReportSession, caller: ReportCaller, fmt: FormatQuery, year: Year, bank_id: BankFilter = None
) -> Response | BreakdownRead:
    scope = service.bank_scope(session, caller, bank_id)
    data = service.by_grade(session, scope, year)
    if fmt is ReportFormat.json:
        return BreakdownRead.of(data)
    return render(sheets.breakdown_report(data, industry=False), fmt, sheets.stem("分等级统计", scope, year))


@router.get(
    "/by-month",
    response_model=ByMonthRead,
    responses=_YEARLY,
    summary="Twelve months of lending and repayments, with stocks at each month's end",
)
def by_month(
    session: ReportSession, caller: ReportCaller, fmt: FormatQuery, year: Year, bank_id: BankFilter = None
) -> Response | ByMonthRead:
    scope = service.bank_scope(session, caller, bank_id)
    data = service.by_month(session, scope, year)
    if fmt is ReportFormat.json:
        return ByMonthRead.of(data)
    return render(sheets.by_month_report(data), fmt, sheets.stem("分月统计", scope, year))


@router.get(
    "/fund-flows",
    response_model=FundFlowsRead,
    responses={**responses(401, 403, 422, 503), **export_responses()},
    tags=["bureau"],
    summary="The fund month by month: contributions, compensation paid, recoveries, month-end balances",
)
def fund_flows(
    session: ReportSession, caller: ReportCaller, fmt: FormatQuery, year: Year
) -> Response | FundFlowsRead:
    if not caller.is_staff:
        raise Forbidden("The fund's own accounts are for bureau staff", code="bureau_only")
    scope = service.bank_scope(session, caller)
    data = service.fund_flows(session, scope, year)
    if fmt is ReportFormat.json:
        return FundFlowsRead.of(data)
    return render(sheets.fund_flows_report(data), fmt, sheets.stem("基金分月收支", scope, year))


@router.get(
    "/aging",
    response_model=AgingRead,
    responses=_REGISTER,
    summary="Overdue and non-performing loans by days past due (1–30, 31–60, 61–90, over 90), now",
)
def aging(
    session: ReportSession,
    caller: ReportCaller,
    settings: SettingsDep,
    fmt: FormatQuery,
    bank_id: BankFilter = None,
    as_of: Annotated[
        IsoDate | None,
        Query(description="Only today (the default): loans keep their current state, not their history"),
    ] = None,
    detail: Annotated[bool, Query(description="Also list the loans (a second sheet in Excel)")] = False,
) -> Response | AgingRead:
    scope = service.bank_scope(session, caller, bank_id)
    data = service.aging(
        session,
        settings,
        scope,
        today=business_today(settings),
        as_of=as_of,
        detail=detail,
        stream=fmt is ReportFormat.csv,
    )
    if fmt is ReportFormat.json:
        return AgingRead.of(data)
    return render(sheets.aging_report(data), fmt, sheets.stem("逾期账龄", scope, data.as_of))


@router.get(
    "/claims",
    response_model=ClaimsRegisterRead,
    responses=_REGISTER,
    summary="Every compensation claim with its amounts, dates, days from default to payment and recoveries",
)
def claims(
    session: ReportSession,
    caller: ReportCaller,
    fmt: FormatQuery,
    bank_id: BankFilter = None,
    state: Annotated[ClaimState | None, Query(description="Only claims in this state")] = None,
) -> Response | ClaimsRegisterRead:
    scope = service.bank_scope(session, caller, bank_id)
    data = service.claims_register(session, scope, state=state, stream=fmt is ReportFormat.csv)
    if fmt is ReportFormat.json:
        return ClaimsRegisterRead.of(data)
    parts = [] if state is None else [state.value]
    return render(sheets.claims_report(data), fmt, sheets.stem("代偿台账", scope, *parts))


@router.get(
    "/status-discrepancies",
    response_model=DiscrepanciesRead,
    responses=_REGISTER,
    summary="Differences found in the banks' monthly status reports (CSV streams any number of rows)",
)
def status_discrepancies(
    session: ReportSession,
    caller: ReportCaller,
    fmt: FormatQuery,
    bank_id: BankFilter = None,
    month_end: Annotated[IsoDate | None, Query(description="One reporting month")] = None,
    kind: Annotated[str | None, Query(max_length=32, description="e.g. balance_mismatch")] = None,
) -> Response | DiscrepanciesRead:
    scope = service.bank_scope(session, caller, bank_id)
    data = service.discrepancies(
        session, scope, month_end=month_end, kind=kind, stream=fmt is ReportFormat.csv
    )
    if fmt is ReportFormat.json:
        return DiscrepanciesRead.of(data)
    parts = [] if month_end is None else [month_end]
    return render(sheets.discrepancies_report(data), fmt, sheets.stem("报送差异", scope, *parts))


@router.get(
    "/enterprises/{credit_code}/history",
    response_model=EnterpriseHistoryRead,
    responses=_YEARLY,
    summary="Every application, loan and claim of one enterprise (a bank: those with it; none → 404)",
)
def enterprise_history(
    credit_code: Annotated[str, Path(pattern=CREDIT_CODE_PATTERN, description="Unified social credit code")],
    session: ReportSession,
    caller: ReportCaller,
    fmt: FormatQuery,
) -> Response | EnterpriseHistoryRead:
    scope = service.bank_scope(session, caller)
    data = service.enterprise_history(session, scope, credit_code)
    if fmt is ReportFormat.json:
        return EnterpriseHistoryRead.of(data)
    return render(sheets.enterprise_history_report(data), fmt, sheets.stem("企业档案", scope, credit_code))
