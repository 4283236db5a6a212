from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import TypeAdapter, ValidationError

from loanfund.core.auth import AnyCaller, BankCaller, SettingsDep
from loanfund.core.body import validated_json_route
from loanfund.core.context import request_id_var
from loanfund.core.dates import IsoDate
from loanfund.core.db import DbSession
from loanfund.core.errors import InvalidInput, LoanfundError, NotFound, responses, validation_details
from loanfund.core.group_commit import GroupCommit
from loanfund.core.idempotency import Idempotency, IdempotencyDep
from loanfund.core.money import to_fen
from loanfund.core.pagination import Page, Pagination
from loanfund.core.params import IdPath, id_query
from loanfund.enterprises.schemas import CreditCode
from loanfund.loans import group_commit, repository, service, writes
from loanfund.loans.models import Loan
from loanfund.loans.schemas import (
    REF_PATTERN,
    BatchContract,
    BatchCreate,
    BatchDisbursement,
    BatchItem,
    BatchRepayment,
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
        return LoanRead.of_done(service.write_one(session, settings, caller.actor, caller.bank_id, body))

    return idem.run(body, 201, produce)


def _batch_item(item: BatchItem) -> writes.Item:
    if isinstance(item, BatchContract):
        return item
    if isinstance(item, BatchDisbursement):
        event = Event(EventKind.disbursement, item.date, principal_fen=to_fen(item.amount))
    elif isinstance(item, BatchRepayment):
        event = Event(
            EventKind.repayment,
            item.date,
            principal_fen=to_fen(item.principal),
            interest_fen=to_fen(item.interest),
        )
    else:
        event = Event(EventKind.delinquency, item.date, days_past_due=item.days_past_due)
    return writes.EventIn(item.bank_loan_ref, event, item.bank_event_ref)


_ITEM: TypeAdapter[BatchItem] = TypeAdapter(BatchItem)


def _salvage_batch(request: Request, data: Any) -> Any:
    """A batch body with malformed items: the well-formed ones are kept (and planned, so that their
    refusals are reported with the rest), each malformed one's errors left on `request.state` for
    `submit_batch` to report by its index. Anything else wrong with the body is FastAPI's to refuse."""
    if not (isinstance(data, dict) and set(data) == {"items"} and isinstance(data["items"], list)):
        return data
    kept, indices, malformed = [], [], []
    for index, raw in enumerate(data["items"]):
        try:
            kept.append(_ITEM.validate_json(orjson.dumps(raw)))  # as the raw body is read: JSON mode
            indices.append(index)
        except ValidationError as exc:
            details = validation_details(exc.errors())
            fields = sorted({d["field"] for d in details if d["field"]})
            message = "The item is malformed" + (f": check {', '.join(fields)}" if fields else "")
            malformed.append(
                {"index": index, "code": "validation_error", "message": message, "details": details}
            )
        except orjson.JSONEncodeError:
            return data
    if not malformed:  # the items are well-formed: what is wrong is the envelope
        return data
    request.state.batch_malformed = (indices, malformed)
    return BatchCreate.model_construct(items=kept)


def submit_batch(
    request: Request,
    body: BatchCreate,
    session: DbSession,
    settings: SettingsDep,
    caller: BankCaller,
    idem: IdempotencyDep,
) -> Response:
    indices, malformed = getattr(request.state, "batch_malformed", (None, []))
    size = len(body.items) + len(malformed)

    def produce() -> BatchResult:
        assert caller.bank_id is not None
        items = body.items
        if size > settings.batch_max_items:
            raise InvalidInput(
                f"A batch holds at most {settings.batch_max_items} items; this one has {size}",
                code="batch_too_large",
                details=[{"field": "items", "message": f"at most {settings.batch_max_items}"}],
            )
        refused = list(malformed)
        if items:
            submission = writes.Submission(
                caller.bank_id, caller.actor, [_batch_item(i) for i in items], source="batch"
            )
            (outcome,) = writes.run(session, settings, [submission], views=False)
            position = indices or range(len(items))  # index in the body of each well-formed item
            refused += [refusal(position[i], exc) for i, exc in outcome.errors]
        if refused:
            refused.sort(key=lambda r: r["index"])
            raise batch_invalid(size, refused)
        contracts = sum(1 for d in outcome.done if d.event is None)
        ids = [d.loan.id for d in outcome.done]
        return BatchResult(
            contracts=contracts, events=len(ids) - contracts, loan_ids=[i for i in ids if i is not None]
        )

    return idem.run(body, 200, produce)


def refusal(index: int, exc: LoanfundError) -> dict[str, Any]:
    return {"index": index, "code": exc.code, "message": exc.message, "details": exc.details}


def batch_invalid(size: int, errors: list[dict[str, Any]]) -> InvalidInput:
    return InvalidInput(
        f"{len(errors)} of {size} items are invalid; nothing was written",
        code="batch_invalid",
        details=errors,
    )


# a body of thousands of items is validated from its raw bytes (see core.body)
router.add_api_route(
    "/batch",
    submit_batch,
    methods=["POST"],
    response_model=BatchResult,
    responses=_WRITE,
    tags=["bank"],
    summary="Submit up to 5,000 contracts and events at once; all or nothing",
    route_class_override=validated_json_route(BatchCreate, _salvage_batch),
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
    item = writes.EventIn(loan_id, event, bank_event_ref)
    return EventResult.of_done(service.write_one(session, settings, caller.actor, caller.bank_id, item))


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
    """A repayment or delinquency report: written with the others in flight (`loans.group_commit`) when it
    is the plain case, otherwise on its own by `_post_event`."""
    assert caller.bank_id is not None
    fingerprint = idem.fingerprint(body) if idem.key is not None else None
    item = group_commit.SingleEvent(
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
    group: GroupCommit[group_commit.SingleEvent, str] = request.app.state.single_events
    done = group.submit(session, item)
    if done is not None:
        return Response(done, status_code=group_commit.STATUS, media_type="application/json")
    return idem.run(
        body,
        group_commit.STATUS,
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
