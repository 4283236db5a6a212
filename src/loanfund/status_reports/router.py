from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from loanfund.banks import service as bank_service
from loanfund.core.auth import AnyCaller, BankCaller, BureauReader, SettingsDep
from loanfund.core.dates import IsoDate
from loanfund.core.db import DbSession
from loanfund.core.errors import NotFound, responses
from loanfund.core.idempotency import IdempotencyDep
from loanfund.core.pagination import Page, Pagination
from loanfund.core.params import IdPath, id_query
from loanfund.status_reports import repository, service
from loanfund.status_reports.models import StatusReport
from loanfund.status_reports.schemas import (
    DiscrepancyRead,
    StatusReportCreate,
    StatusReportDetail,
    StatusReportRead,
)

router = APIRouter(prefix="/api/v1/status-reports")


def _detail(session: DbSession, report: StatusReport) -> StatusReportDetail:
    found = repository.discrepancies_of(session, report.id)
    return StatusReportDetail(
        **StatusReportRead.of(report).model_dump(), discrepancies=[DiscrepancyRead.of(d) for d in found]
    )


@router.post(
    "",
    status_code=201,
    response_model=StatusReportDetail,
    responses=responses(401, 403, 409, 422, 503),
    tags=["bank"],
    summary="Submit the month-end status of every loan; closes the month",
)
def submit_report(
    body: StatusReportCreate,
    session: DbSession,
    settings: SettingsDep,
    caller: BankCaller,
    idem: IdempotencyDep,
) -> Response:
    def produce() -> StatusReportDetail:
        assert caller.bank_id is not None
        bank = bank_service.get_bank(session, caller.bank_id)
        report = service.submit(session, settings, caller.actor, bank, body.month_end, body.loans)
        return _detail(session, report)

    return idem.run(body, 201, produce)


@router.get(
    "/discrepancies",
    responses=responses(401, 403, 422, 503),
    tags=["bureau"],
    summary="Every mismatch found in the banks' status reports",
)
def list_discrepancies(
    session: DbSession,
    caller: BureauReader,
    page: Pagination,
    bank_id: Annotated[int | None, id_query()] = None,
    month_end: Annotated[IsoDate | None, Query()] = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
) -> Page[DiscrepancyRead]:
    rows = repository.list_discrepancies(
        session, bank_id=bank_id, month_end=month_end, kind=kind, after_id=page.after_id, limit=page.fetch
    )
    return page.page(rows, DiscrepancyRead.of, lambda d: d.id)


@router.get(
    "", responses=responses(401, 403, 422, 503), tags=["bank", "bureau"], summary="List status reports"
)
def list_reports(
    session: DbSession,
    caller: AnyCaller,
    page: Pagination,
    bank_id: Annotated[int | None, id_query()] = None,
) -> Page[StatusReportRead]:
    rows = repository.list_readable(
        session, caller, bank_id=bank_id, after_id=page.after_id, limit=page.fetch
    )
    return page.page(rows, StatusReportRead.of, lambda r: r.id)


@router.get(
    "/{report_id}",
    responses=responses(401, 403, 404, 422, 503),
    tags=["bank", "bureau"],
    summary="One report",
)
def read_report(report_id: IdPath, session: DbSession, caller: AnyCaller) -> StatusReportDetail:
    report = repository.get_readable(session, caller, report_id)
    if report is None:
        raise NotFound("No such status report", code="status_report_not_found")
    return _detail(session, report)
