from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from loanfund.banks import service as bank_service
from loanfund.banks.models import Bank
from loanfund.core.auth import AnyCaller, BankCaller, BureauOfficer, BureauReader, SettingsDep
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
    ReopeningCreate,
    ReopeningRead,
    StatusReportAmendment,
    StatusReportCreate,
    StatusReportDetail,
    StatusReportRead,
)

router = APIRouter(prefix="/api/v1/status-reports")


def _detail(session: DbSession, report: StatusReport) -> StatusReportDetail:
    found = repository.discrepancies_of(session, report.id)
    return StatusReportDetail(
        **StatusReportRead.of(report).model_dump(),
        discrepancies=[DiscrepancyRead.of(d, report.version) for d in found],
    )


def _own_bank(session: DbSession, caller: BankCaller) -> Bank:
    assert caller.bank_id is not None
    return bank_service.get_bank(session, caller.bank_id)


@router.post(
    "",
    status_code=201,
    response_model=StatusReportDetail,
    responses=responses(401, 403, 409, 422, 503),
    tags=["bank"],
    summary="Submit the month-end status of every loan; closes the month",
    description="A month already closed takes an amended report (`POST /status-reports/amendments`).",
)
def submit_report(
    body: StatusReportCreate,
    session: DbSession,
    settings: SettingsDep,
    caller: BankCaller,
    idem: IdempotencyDep,
) -> Response:
    def produce() -> StatusReportDetail:
        report = service.submit(
            session, settings, caller.actor, _own_bank(session, caller), body.month_end, body.loans
        )
        return _detail(session, report)

    return idem.run(body, 201, produce)


@router.post(
    "/amendments",
    status_code=201,
    response_model=StatusReportDetail,
    responses=responses(401, 403, 409, 422, 503),
    tags=["bank"],
    summary="File an amended report for a closed month, with a reason (the month's next version)",
    description=(
        "The month's earlier versions stay readable, and the discrepancies of each version stay listed. "
        "Balances are reconciled against the events as they stand now. Days past due are updated only "
        "where the month is open again (an officer reopened it): otherwise a difference is listed as "
        "`update_refused`. The amendment of a reopened month closes it again."
    ),
)
def amend_report(
    body: StatusReportAmendment,
    session: DbSession,
    settings: SettingsDep,
    caller: BankCaller,
    idem: IdempotencyDep,
) -> Response:
    def produce() -> StatusReportDetail:
        bank = _own_bank(session, caller)
        report = service.amend(session, settings, caller.actor, bank, body.month_end, body.loans, body.reason)
        return _detail(session, report)

    return idem.run(body, 201, produce)


@router.post(
    "/reopenings",
    status_code=201,
    response_model=ReopeningRead,
    responses=responses(401, 403, 404, 409, 422, 503),
    tags=["bureau"],
    summary="Reopen a bank's closed month, with a reason, so that late events can be posted (officer)",
    description=(
        "From the reopened month on, the bank's events are accepted again until the bank files the "
        "month's amended report (`POST /status-reports/amendments`), which closes it."
    ),
)
def reopen_month(
    body: ReopeningCreate,
    session: DbSession,
    settings: SettingsDep,
    caller: BureauOfficer,
    idem: IdempotencyDep,
) -> Response:
    def produce() -> ReopeningRead:
        assert caller.staff_id is not None
        bank = bank_service.get_bank(session, body.bank_id)
        return ReopeningRead.of(
            service.reopen_month(
                session, settings, caller.actor, caller.staff_id, bank, body.month_end, body.reason
            )
        )

    return idem.run(body, 201, produce)


@router.get(
    "/reopenings",
    responses=responses(401, 403, 422, 503),
    tags=["bank", "bureau"],
    summary="Reopened months (a bank sees its own)",
)
def list_reopenings(
    session: DbSession,
    caller: AnyCaller,
    page: Pagination,
    bank_id: Annotated[int | None, id_query()] = None,
    open: Annotated[bool | None, Query(description="Only those still open (true) or closed (false)")] = None,
) -> Page[ReopeningRead]:
    rows = repository.list_reopenings(
        session, caller, bank_id=bank_id, open_only=open, after_id=page.after_id, limit=page.fetch
    )
    return page.page(rows, ReopeningRead.of, lambda r: r.id)


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
    return page.page(rows, lambda r: DiscrepancyRead.of(*r), lambda r: r[0].id)


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
