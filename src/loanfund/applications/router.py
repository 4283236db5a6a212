from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from loanfund.applications import repository, service
from loanfund.applications.models import Application, ApplicationStatus
from loanfund.applications.schemas import (
    APPLICATION_NO_PATTERN,
    ApplicationCreate,
    ApplicationCreated,
    ApplicationRead,
    ApplicationStatusRead,
    ApprovalCreate,
    Grade,
    OverrideCreate,
    RejectionCreate,
    StatusTokenReissue,
    StatusTokenReissued,
)
from loanfund.core.auth import BankCaller, BureauOfficer, BureauReader, SettingsDep
from loanfund.core.clock import business_today
from loanfund.core.config import Settings
from loanfund.core.dates import IsoDate
from loanfund.core.db import DbSession
from loanfund.core.errors import NotFound, Unauthorized, responses
from loanfund.core.idempotency import Idempotency, IdempotencyDep, PublicIdempotencyDep
from loanfund.core.pagination import Page, Pagination
from loanfund.core.ratelimit import check_token_failures, count_token_failure, limit_public
from loanfund.enterprises.schemas import CREDIT_CODE_PATTERN

router = APIRouter(prefix="/api/v1")
_LIST_ERR = responses(401, 403, 422, 503)
_READ_ERR = responses(401, 403, 404, 422, 503)
_CHANGE_ERR = responses(401, 403, 404, 409, 422, 503)
status_token = HTTPBearer(
    auto_error=False, scheme_name="StatusToken", description="The status token given when applying"
)
AppNo = Annotated[
    str, Path(pattern=APPLICATION_NO_PATTERN, description="Application number", examples=["KV2021000123"])
]


def today(settings: SettingsDep) -> date:
    """The business date (Asia/Shanghai) of the request."""
    return business_today(settings)


Today = Annotated[date, Depends(today)]


def _full(session: DbSession, app: Application) -> ApplicationRead:
    return ApplicationRead.full(app, service.loan_summary(session, app.id))


# --- enterprises (public) ------------------------------------------------------------------------


def created(session: Session, app: Application, token: str) -> ApplicationCreated:
    return ApplicationCreated(
        **ApplicationStatusRead.of(app, service.loan_summary(session, app.id)).model_dump(),
        status_token=token,
    )


@router.post(
    "/applications",
    status_code=status.HTTP_201_CREATED,
    response_model=ApplicationCreated,
    responses=responses(409, 422, 429, 503),
    tags=["enterprise"],
    summary="Apply for a knowledge-value credit loan (no key; rate-limited)",
    description=(
        "Evaluated at once. The answer carries the application number and a **status token shown once**; "
        "read the application later with `Authorization: Bearer <status token>`. An enterprise missing "
        "from the registry or not a registered tech enterprise is taken but marked `ineligible`. With "
        "`Idempotency-Key` a retry replays the first answer exactly (token included) and creates nothing."
    ),
    dependencies=[Depends(limit_public)],
)
def submit_application(
    body: ApplicationCreate,
    session: DbSession,
    settings: SettingsDep,
    day: Today,
    idem: PublicIdempotencyDep,
) -> Response:
    return submit(session, settings, body, day, idem)


def submit(
    session: Session,
    settings: Settings,
    body: ApplicationCreate,
    day: date,
    idem: Idempotency,
    *,
    wait_s: float = 0.0,
) -> Response:
    """Submit once per idempotency key (the API's header, the portal form's nonce); the status token of a
    keyed submission is sealed out of its stored answer."""
    sealed = idem.sealed()

    def produce() -> ApplicationCreated:
        token = sealed.issue("lft") if sealed is not None else None
        app, token = service.submit_application(session, settings, body, today=day, token=token)
        return created(session, app, token)

    return idem.run(body, 201, produce, sealed=sealed, wait_s=wait_s)


@router.get(
    "/applications/{application_no}",
    responses=responses(401, 404, 422, 429, 503),
    tags=["enterprise"],
    summary="Read an application with its status token (rate-limited)",
    description=(
        "An unknown number and a wrong token are the same 404; wrong tokens count against a stricter "
        "budget per address."
    ),
    dependencies=[Depends(limit_public), Depends(check_token_failures)],
)
def read_application_status(
    application_no: AppNo,
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(status_token)],
) -> ApplicationStatusRead:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("The status token is required", code="status_token_required")
    app = service.get_with_token(session, settings, application_no, credentials.credentials)
    if app is None:
        count_token_failure(request)
        raise NotFound("No such application", code="application_not_found")
    return ApplicationStatusRead.of(app, service.loan_summary(session, app.id))


# --- bureau ---------------------------------------------------------------------------------------


@router.get("/applications", responses=_LIST_ERR, tags=["bureau"], summary="List applications")
def list_applications(
    session: DbSession,
    caller: BureauReader,
    page: Pagination,
    status: Annotated[ApplicationStatus | None, Query()] = None,
    bank_code: Annotated[str | None, Query(pattern=r"^[A-Z0-9_]{2,32}$")] = None,
    credit_code: Annotated[str | None, Query(pattern=CREDIT_CODE_PATTERN)] = None,
    grade: Annotated[Grade | None, Query(description="The grade in force")] = None,
    applied_from: Annotated[IsoDate | None, Query()] = None,
    applied_to: Annotated[IsoDate | None, Query()] = None,
) -> Page[ApplicationRead]:
    rows = repository.list_readable(
        session,
        caller,
        status=status,
        bank_code=bank_code,
        credit_code=credit_code,
        grade=grade,
        applied_from=applied_from,
        applied_to=applied_to,
        after_id=page.after_id,
        limit=page.fetch,
    )
    return page.page(rows, lambda a: _full(session, a), lambda a: a.id)


@router.get(
    "/applications/{application_no}/detail",
    responses=_READ_ERR,
    tags=["bureau"],
    summary="Read an application in full (bureau staff)",
)
def read_application(application_no: AppNo, session: DbSession, caller: BureauReader) -> ApplicationRead:
    return _full(session, service.get_readable(session, caller, application_no))


@router.post(
    "/applications/{application_no}/override",
    responses=_CHANGE_ERR,
    tags=["bureau"],
    summary="Override the grade and/or credit line, with a reason (officer; audited)",
)
def override_application(
    application_no: AppNo, body: OverrideCreate, session: DbSession, caller: BureauOfficer
) -> ApplicationRead:
    app = service.get_readable(session, caller, application_no, for_update=True)
    service.override_evaluation(
        session, caller.actor, app, grade=body.grade, credit_line=body.credit_line, reason=body.reason
    )
    return _full(session, app)


@router.post(
    "/applications/{application_no}/status-token",
    responses=_CHANGE_ERR,
    tags=["bureau"],
    summary="Reissue an applicant's lost status token (officer; audited; the old token stops working)",
)
def reissue_status_token(
    application_no: AppNo,
    body: StatusTokenReissue,
    session: DbSession,
    settings: SettingsDep,
    caller: BureauOfficer,
) -> StatusTokenReissued:
    app = service.get_readable(session, caller, application_no, for_update=True)
    token = service.reissue_status_token(session, settings, caller.actor, app, reason=body.reason)
    return StatusTokenReissued(application_no=app.application_no, status_token=token)


# --- partner banks --------------------------------------------------------------------------------


@router.get(
    "/bank/applications",
    responses=_LIST_ERR,
    tags=["bank"],
    summary="The applications routed to the calling bank",
)
def list_bank_applications(
    session: DbSession,
    caller: BankCaller,
    page: Pagination,
    status: Annotated[ApplicationStatus | None, Query()] = None,
    credit_code: Annotated[str | None, Query(pattern=CREDIT_CODE_PATTERN)] = None,
    applied_from: Annotated[IsoDate | None, Query()] = None,
    applied_to: Annotated[IsoDate | None, Query()] = None,
) -> Page[ApplicationRead]:
    rows = repository.list_readable(
        session,
        caller,
        status=status,
        bank_code=None,
        credit_code=credit_code,
        grade=None,
        applied_from=applied_from,
        applied_to=applied_to,
        after_id=page.after_id,
        limit=page.fetch,
    )
    return page.page(rows, lambda a: _full(session, a), lambda a: a.id)


@router.get(
    "/bank/applications/{application_no}",
    responses=_READ_ERR,
    tags=["bank"],
    summary="Read an application routed to the calling bank",
)
def read_bank_application(application_no: AppNo, session: DbSession, caller: BankCaller) -> ApplicationRead:
    return _full(session, service.get_readable(session, caller, application_no))


@router.post(
    "/bank/applications/{application_no}/approve",
    response_model=ApplicationRead,
    responses=_CHANGE_ERR,
    tags=["bank"],
    summary="Approve: amount ≤ credit line, term ≤ 12 months, rate ≤ one-year LPR + cap on the decision date",
)
def approve_application(
    application_no: AppNo,
    body: ApprovalCreate,
    session: DbSession,
    settings: SettingsDep,
    caller: BankCaller,
    day: Today,
    idem: IdempotencyDep,
) -> Response:
    def produce() -> ApplicationRead:
        app = service.get_readable(session, caller, application_no, for_update=True)
        service.approve(
            session,
            settings,
            caller.actor,
            app,
            amount=body.amount,
            term_months=body.term_months,
            annual_rate_pct=body.annual_rate_pct,
            today=day,
        )
        return _full(session, app)

    return idem.run(body, 200, produce)


@router.post(
    "/bank/applications/{application_no}/reject",
    response_model=ApplicationRead,
    responses=_CHANGE_ERR,
    tags=["bank"],
    summary="Reject, with a reason",
)
def reject_application(
    application_no: AppNo,
    body: RejectionCreate,
    session: DbSession,
    caller: BankCaller,
    day: Today,
    idem: IdempotencyDep,
) -> Response:
    def produce() -> ApplicationRead:
        app = service.get_readable(session, caller, application_no, for_update=True)
        service.reject(session, caller.actor, app, reason=body.reason, today=day)
        return _full(session, app)

    return idem.run(body, 200, produce)
