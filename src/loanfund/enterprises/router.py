from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from loanfund.core.auth import BureauOfficer, BureauReader
from loanfund.core.db import DbSession
from loanfund.core.errors import InvalidInput, responses
from loanfund.core.idempotency import IdempotencyDep
from loanfund.core.pagination import Page, Pagination
from loanfund.enterprises import repository, service
from loanfund.enterprises.schemas import (
    CREDIT_CODE_PATTERN,
    EnterpriseCreate,
    EnterpriseRead,
    EnterpriseUpdate,
    ImportResult,
)

router = APIRouter(prefix="/api/v1/enterprises", tags=["bureau"])
_ERR = responses(401, 403, 404, 409, 422, 503)
IMPORT_EXAMPLE = (
    "credit_code,name,industry,tech_reg_no,tech_reg_date,headcount\n"
    "91500114MA62K7P8QU,重庆黔江示例软件有限公司,I,2021500114000456,2021-05-10,35\n"
)
CodePath = Annotated[str, Path(pattern=CREDIT_CODE_PATTERN, description="Unified social credit code")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=EnterpriseRead,
    responses=_ERR,
    summary="Register an enterprise",
)
def create_enterprise(
    body: EnterpriseCreate, session: DbSession, caller: BureauOfficer, idem: IdempotencyDep
) -> Response:
    return idem.run(
        body,
        status.HTTP_201_CREATED,
        lambda: EnterpriseRead.of(service.create_enterprise(session, caller.actor, body)),
    )


@router.get("", responses=_ERR, summary="Search the enterprise registry")
def list_enterprises(
    session: DbSession,
    caller: BureauReader,
    page: Pagination,
    industry: Annotated[str | None, Query(pattern=r"^[A-T]$")] = None,
    region_code: Annotated[str | None, Query(pattern=r"^[0-9]{6}$")] = None,
    registered: Annotated[bool | None, Query(description="Registered as a tech enterprise")] = None,
    high_tech: Annotated[bool | None, Query(description="Holds a high-tech certificate")] = None,
    q: Annotated[str | None, Query(max_length=100, description="Name contains")] = None,
) -> Page[EnterpriseRead]:
    rows = repository.search(
        session,
        industry=industry,
        region_code=region_code,
        registered=registered,
        high_tech=high_tech,
        name_contains=q,
        after_id=page.after_id,
        limit=page.fetch,
    )
    return page.page(rows, EnterpriseRead.of, lambda e: e.id)


@router.post(
    "/import",
    response_model=ImportResult,
    responses=_ERR,
    summary="Import enterprises from CSV (UTF-8, header row); all rows or none",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}, "example": IMPORT_EXAMPLE}},
        }
    },
)
async def import_enterprises(
    request: Request, session: DbSession, caller: BureauOfficer, idem: IdempotencyDep
) -> Response:
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput("The CSV must be UTF-8", code="csv_encoding") from exc

    def produce() -> ImportResult:
        return ImportResult(imported=service.import_csv(session, caller.actor, text))

    return await run_in_threadpool(idem.run, {"csv": text}, 200, produce)


@router.get("/{credit_code}", responses=_ERR, summary="Read an enterprise")
def read_enterprise(credit_code: CodePath, session: DbSession, caller: BureauReader) -> EnterpriseRead:
    return EnterpriseRead.of(service.get_enterprise(session, credit_code))


@router.patch("/{credit_code}", response_model=EnterpriseRead, responses=_ERR, summary="Update an enterprise")
def update_enterprise(
    credit_code: CodePath,
    body: EnterpriseUpdate,
    session: DbSession,
    caller: BureauOfficer,
    idem: IdempotencyDep,
) -> Response:
    def produce() -> EnterpriseRead:
        ent = service.get_enterprise(session, credit_code)
        return EnterpriseRead.of(service.update_enterprise(session, caller.actor, ent, body))

    # a change is what was sent: an absent field and an explicit null are different requests
    return idem.run(body.model_dump(mode="json", exclude_unset=True), 200, produce)
