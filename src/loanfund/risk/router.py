"""The stress test (`/api/v1/fund/stress-tests`, bureau staff) and the bank ratings
(`/api/v1/banks/ratings`, `/api/v1/banks/{bank_id}/ratings`: bureau staff see every bank, a bank's key
its own ratings). Each read answers JSON, CSV or an Excel workbook (`?format=`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from loanfund.banks import repository as bank_repository
from loanfund.core.auth import AnyCaller, BureauReader, Principal, SettingsDep, require_staff
from loanfund.core.clock import business_today
from loanfund.core.db import DbSession
from loanfund.core.errors import InvalidInput, NotFound, responses
from loanfund.core.idempotency import IdempotencyDep
from loanfund.core.pagination import Page, Pagination
from loanfund.core.params import IdPath
from loanfund.reports.export import FormatQuery, ReportFormat, export_responses, render
from loanfund.risk import ratings, sheets, stress
from loanfund.risk.schemas import (
    MONTH_PATTERN,
    BankRatingRead,
    MonthRatingsRead,
    StressTestCreate,
    StressTestRead,
    StressTestSummary,
    parse_month,
)
from loanfund.staff.models import Role

router = APIRouter()

STRESS_RUNNERS = (Role.officer, Role.analyst)  # who may run a stress test (the console asks the same)
StressRunner = Annotated[Principal, Depends(require_staff(*STRESS_RUNNERS))]
_READ = {**responses(401, 403, 404, 422, 503), **export_responses()}


# --- the stress test ------------------------------------------------------------------------------------


@router.post(
    "/api/v1/fund/stress-tests",
    status_code=201,
    response_model=StressTestRead,
    responses=responses(401, 403, 409, 422, 503),
    tags=["bureau"],
    summary="Run a stress test of the fund (a seeded Monte Carlo over the covered book) and store it",
)
def run_stress_test(
    body: StressTestCreate,
    session: DbSession,
    settings: SettingsDep,
    caller: StressRunner,
    idem: IdempotencyDep,
) -> Response:
    def produce() -> StressTestRead:
        return stress.read(stress.run(session, settings, caller.actor, body, today=business_today(settings)))

    return idem.run(body, 201, produce)


@router.get(
    "/api/v1/fund/stress-tests",
    response_model=Page[StressTestSummary],
    responses=_READ,
    tags=["bureau"],
    summary="Stress tests run, newest first (CSV and Excel: every run)",
)
def list_stress_tests(
    session: DbSession, caller: BureauReader, page: Pagination, fmt: FormatQuery
) -> Response | Page[StressTestSummary]:
    if fmt is not ReportFormat.json:
        runs = (stress.summary(r) for r in stress.list_runs(session))
        return render(sheets.stress_runs_report(runs), fmt, "压力测试记录")
    rows = stress.list_runs(session, after_id=page.after_id, limit=page.fetch)
    return page.page(rows, stress.summary, lambda r: r.id)


@router.get(
    "/api/v1/fund/stress-tests/{run_id}",
    response_model=StressTestRead,
    responses=_READ,
    tags=["bureau"],
    summary="One stress test: its inputs, calibration and results",
)
def read_stress_test(
    run_id: IdPath, session: DbSession, caller: BureauReader, fmt: FormatQuery
) -> Response | StressTestRead:
    run = stress.read(stress.get_run(session, run_id))
    if fmt is ReportFormat.json:
        return run
    return render(sheets.stress_run_report(run), fmt, f"压力测试-{run.id}")


# --- bank ratings ---------------------------------------------------------------------------------------

Month = Annotated[
    str | None,
    Query(pattern=MONTH_PATTERN, description="The month rated, YYYY-MM; default the latest rated"),
]


@router.get(
    "/api/v1/banks/ratings",
    response_model=MonthRatingsRead,
    responses=_READ,
    tags=["bureau", "bank"],
    summary="Every bank's risk rating (1–5) for a month, with its measures and trend (a bank: its own)",
)
def month_ratings(
    session: DbSession, caller: AnyCaller, fmt: FormatQuery, month: Month = None
) -> Response | MonthRatingsRead:
    table = ratings.month_table(
        session, parse_month(month) if month else None, bank_id=caller.bank_id if caller.is_bank else None
    )
    answer = ratings.read_table(table)
    if fmt is ReportFormat.json:
        return answer
    label = "–" if answer.month is None else answer.month
    report = sheets.ratings_report(
        answer.ratings, f"{label}（{answer.peers} 家银行参评 / {answer.peers} banks rated）"
    )
    return render(report, fmt, sheets.month_stem(table.month))


def _before(cursor: int | None) -> date | None:
    """The history's cursor is the last month shown, as YYYYMM."""
    if cursor is None:
        return None
    year, month = divmod(cursor, 100)
    if not (1900 <= year <= 2199 and 1 <= month <= 12):
        raise InvalidInput(
            "The cursor is not one this list gave",
            code="invalid_cursor",
            details=[{"field": "cursor", "message": "not a month YYYYMM"}],
        )
    return date(year, month, 1)


@router.get(
    "/api/v1/banks/{bank_id}/ratings",
    response_model=Page[BankRatingRead],
    responses=_READ,
    tags=["bureau", "bank"],
    summary="A bank's ratings, newest month first (CSV and Excel: the whole history)",
)
def bank_ratings(
    bank_id: IdPath, session: DbSession, caller: AnyCaller, page: Pagination, fmt: FormatQuery
) -> Response | Page[BankRatingRead]:
    bank = bank_repository.get_readable(session, caller, bank_id)
    if bank is None:
        raise NotFound("No such bank", code="bank_not_found")
    if fmt is not ReportFormat.json:
        history = [ratings.read(v) for v in ratings.bank_history(session, bank.id)]
        note = f" · 合作银行 / Bank: {bank.code} {bank.name}"
        return render(
            sheets.ratings_report(history, "全部月份 / Every month", note), fmt, f"银行风险评级-{bank.code}"
        )
    views = ratings.bank_history(session, bank.id, before=_before(page.after_id), limit=page.fetch)
    return page.page(views, ratings.read, lambda v: v.rating.month.year * 100 + v.rating.month.month)
