from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from loanfund.banks import service as bank_service
from loanfund.core.auth import AnyCaller, BankCaller, SettingsDep
from loanfund.core.body import validated_json_route
from loanfund.core.context import request_id_var
from loanfund.core.dates import IsoDate
from loanfund.core.db import DbSession
from loanfund.core.errors import NotFound, responses
from loanfund.core.group_commit import GroupCommit
from loanfund.core.idempotency import Idempotency, IdempotencyDep
from loanfund.core.money import to_fen
from loanfund.core.pagination import Page, Pagination
from loanfund.core.params import IdPath, id_query
from loanfund.enterprises.schemas import CreditCode
from loanfund.loans import batch, grouped, repository, service
from loanfund.loans.models import Loan
from loanfund.loans.schemas import (
    REF_PATTERN,
    BatchCreate,
    BatchResult,
    DelinquencyCreate,
    DisbursementCreate,
    EventRead,
    EventResult,
    LoanCreate,
    LoanDetail,
    LoanRead,
    RepaymentCreate,
)
from loanfund.loans.state import Event, EventKind, LoanState

router = APIRouter(prefix="/api/v1/loans")
_WRITE = responses(401, 403, 404, 409, 422, 503)
_READ = responses(401, 403, 404, 422, 503)


def _read(session: DbSession, loan: Loan) -> LoanRead:
    return LoanRead.of(loan, repository.credit_code_of(session, loan))


@router.post(
    "",
    status_code=201,
    response_model=LoanRead,
    responses=_WRITE,
    tags=["bank"],
    summary="Register a loan contract (from an approved application, or historical)",
)
def create_loan(
    body: LoanCreate, session: DbSession, settings: SettingsDep, caller: BankCaller, idem: IdempotencyDep
) -> Response:
    def produce() -> LoanRead:
        assert caller.bank_id is not None
        bank = bank_service.get_bank(session, caller.bank_id)
        loan = service.register_contract(
            session,
            settings,
            caller.actor,
            bank,
            bank_loan_ref=body.bank_loan_ref,
            credit_code=body.credit_code,
            amount=body.amount,
            annual_rate_pct=body.annual_rate_pct,
            start_date=body.start_date,
            maturity_date=body.maturity_date,
            application_no=body.application_no,
        )
        return LoanRead.of(loan, body.credit_code)

    return idem.run(body, 201, produce)


def submit_batch(
    body: BatchCreate, session: DbSession, settings: SettingsDep, caller: BankCaller, idem: IdempotencyDep
) -> Response:
    def produce() -> BatchResult:
        assert caller.bank_id is not None
        bank = bank_service.get_bank(session, caller.bank_id)
        contracts, events, loan_ids = batch.submit(session, settings, caller.actor, bank, body.items)
        return BatchResult(contracts=contracts, events=events, loan_ids=loan_ids)

    return idem.run(body, 200, produce)


# a body of thousands of items is validated from its raw bytes (see core.body)
router.add_api_route(
    "/batch",
    submit_batch,
    methods=["POST"],
    response_model=BatchResult,
    responses=_WRITE,
    tags=["bank"],
    summary="Submit up to 5,000 contracts and events at once; all or nothing",
    route_class_override=validated_json_route(BatchCreate),
)


def _post_event(
    session: DbSession,
    settings: SettingsDep,
    caller: BankCaller,
    loan_id: IdPath,
    event: Event,
    bank_event_ref: str,
) -> EventResult:
    assert caller.bank_id is not None
    lk = service.Lookups(session, settings)
    loan, credit_code = service.get_for_bank_locked(session, lk, caller.bank_id, loan_id)
    row = service.post_event(
        session, settings, caller.actor, loan, event, bank_event_ref=bank_event_ref, lookups=lk
    )
    service.evaluate_breakers(session, settings, caller.actor, lk)
    return EventResult(event=EventRead.of(row), loan=LoanRead.of(loan, credit_code))


def _post_grouped(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    caller: BankCaller,
    idem: Idempotency,
    loan_id: int,
    event: Event,
    body: RepaymentCreate | DelinquencyCreate,
) -> Response:
    """A repayment or delinquency report: written with the others in flight (`loans.grouped`) when it
    is the plain case, otherwise on its own by `_post_event`."""
    assert caller.bank_id is not None
    fingerprint = idem.fingerprint(body) if idem.key is not None else None
    item = grouped.SingleEvent(
        caller.bank_id,
        caller.actor,
        request_id_var.get(),
        loan_id,
        event,
        body.bank_event_ref,
        idem.key,
        fingerprint,
    )
    session.commit()  # what authentication wrote; no connection is held while the group runs
    group: GroupCommit[grouped.SingleEvent, str] = request.app.state.single_events
    done = group.submit(session, item)
    if done is not None:
        return Response(done, status_code=grouped.STATUS, media_type="application/json")
    return idem.run(
        body,
        grouped.STATUS,
        lambda: _post_event(session, settings, caller, loan_id, event, body.bank_event_ref),
        fingerprint=fingerprint,
    )


@router.post(
    "/{loan_id}/disbursements",
    status_code=201,
    response_model=EventResult,
    responses=_WRITE,
    tags=["bank"],
    summary="Record a disbursement (partial allowed; total ≤ contract)",
)
def disburse(
    loan_id: IdPath,
    body: DisbursementCreate,
    session: DbSession,
    settings: SettingsDep,
    caller: BankCaller,
    idem: IdempotencyDep,
) -> Response:
    event = Event(EventKind.disbursement, body.date, principal_fen=to_fen(body.amount))
    return idem.run(
        body, 201, lambda: _post_event(session, settings, caller, loan_id, event, body.bank_event_ref)
    )


@router.post(
    "/{loan_id}/repayments",
    status_code=201,
    response_model=EventResult,
    responses=_WRITE,
    tags=["bank"],
    summary="Record a repayment of principal and/or interest",
)
def repay(
    request: Request,
    loan_id: IdPath,
    body: RepaymentCreate,
    session: DbSession,
    settings: SettingsDep,
    caller: BankCaller,
    idem: IdempotencyDep,
) -> Response:
    event = Event(
        EventKind.repayment,
        body.date,
        principal_fen=to_fen(body.principal),
        interest_fen=to_fen(body.interest),
    )
    return _post_grouped(request, session, settings, caller, idem, loan_id, event, body)


@router.post(
    "/{loan_id}/delinquency",
    status_code=201,
    response_model=EventResult,
    responses=_WRITE,
    tags=["bank"],
    summary="Report the loan's days past due as of a date",
)
def report_delinquency(
    request: Request,
    loan_id: IdPath,
    body: DelinquencyCreate,
    session: DbSession,
    settings: SettingsDep,
    caller: BankCaller,
    idem: IdempotencyDep,
) -> Response:
    event = Event(EventKind.delinquency, body.date, days_past_due=body.days_past_due)
    return _post_grouped(request, session, settings, caller, idem, loan_id, event, body)


@router.get("", responses=_READ, tags=["bank", "bureau"], summary="List loans (a bank sees its own)")
def list_loans(
    session: DbSession,
    caller: AnyCaller,
    page: Pagination,
    state: Annotated[LoanState | None, Query()] = None,
    bank_id: Annotated[int | None, id_query("Bureau only: one bank's loans")] = None,
    credit_code: Annotated[CreditCode | None, Query()] = None,
    start_from: Annotated[IsoDate | None, Query(description="Contracts starting on or after")] = None,
    start_to: Annotated[IsoDate | None, Query(description="Contracts starting on or before")] = None,
) -> Page[LoanRead]:
    rows = repository.search(
        session,
        caller,
        state=state,
        bank_id=bank_id,
        credit_code=credit_code,
        start_from=start_from,
        start_to=start_to,
        after_id=page.after_id,
        limit=page.fetch,
    )
    return page.page(rows, lambda r: LoanRead.of(r[0], r[1]), lambda r: r[0].id)


@router.get(
    "/by-ref/{bank_loan_ref}", responses=_READ, tags=["bank"], summary="Find a loan by the bank's reference"
)
def loan_by_ref(
    bank_loan_ref: Annotated[
        str, Path(min_length=1, max_length=64, pattern=REF_PATTERN, description="The bank's reference")
    ],
    session: DbSession,
    caller: BankCaller,
) -> LoanRead:
    assert caller.bank_id is not None
    loan = repository.by_ref(session, caller.bank_id, bank_loan_ref)
    if loan is None:
        raise NotFound("No such loan", code="loan_not_found")
    return _read(session, loan)


@router.get("/{loan_id}", responses=_READ, tags=["bank", "bureau"], summary="A loan with its event history")
def read_loan(loan_id: IdPath, session: DbSession, caller: AnyCaller) -> LoanDetail:
    loan = repository.get_readable(session, caller, loan_id, with_events=True)
    if loan is None:
        raise NotFound("No such loan", code="loan_not_found")
    base = _read(session, loan)
    return LoanDetail(**base.model_dump(), events=[EventRead.of(e) for e in loan.events])
