from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from loanfund.banks import service as bank_service
from loanfund.claims import repository, service
from loanfund.claims.models import Claim, ClaimState
from loanfund.claims.schemas import (
    ClaimApproval,
    ClaimCreate,
    ClaimDetail,
    ClaimRead,
    ClaimRejection,
    CollectionClose,
    RecoveryCreate,
    RecoveryRead,
    RemittanceCreate,
)
from loanfund.core.auth import AnyCaller, BankCaller, BureauApprover, Principal, SettingsDep, require_staff
from loanfund.core.clock import business_today
from loanfund.core.db import DbSession
from loanfund.core.errors import responses
from loanfund.core.idempotency import IdempotencyDep
from loanfund.core.money import to_fen
from loanfund.core.pagination import Page, Pagination
from loanfund.core.params import IdPath, id_query
from loanfund.loans import service as loan_service
from loanfund.staff.models import Role

router = APIRouter(prefix="/api/v1/claims")
_WRITE = responses(401, 403, 404, 409, 422, 503)
_READ = responses(401, 403, 404, 422, 503)
BureauReviewer = Annotated[Principal, Depends(require_staff(Role.officer, Role.approver))]


def _detail(session: DbSession, claim: Claim) -> ClaimDetail:
    base = ClaimRead.of(claim, repository.receivable_fen(session, claim.id))
    return ClaimDetail(
        **base.model_dump(),
        recoveries=[RecoveryRead.of(r) for r in repository.recoveries_of(session, claim.id)],
    )


@router.post(
    "",
    status_code=201,
    response_model=ClaimDetail,
    responses=_WRITE,
    tags=["bank"],
    summary="File a compensation claim on a non-performing loan",
)
def file_claim(
    body: ClaimCreate, session: DbSession, settings: SettingsDep, caller: BankCaller, idem: IdempotencyDep
) -> Response:
    def produce() -> ClaimDetail:
        assert caller.bank_id is not None
        bank = bank_service.get_bank(session, caller.bank_id)
        loan = loan_service.get_for_bank(session, caller.bank_id, body.loan_id)
        claim = service.file_claim(
            session,
            settings,
            caller.actor,
            bank,
            loan,
            principal_fen=to_fen(body.principal_at_default),
            day=business_today(settings),
        )
        return _detail(session, claim)

    return idem.run(body, 201, produce)


@router.get("", responses=_READ, tags=["bank", "bureau"], summary="List claims (a bank sees its own)")
def list_claims(
    session: DbSession,
    caller: AnyCaller,
    page: Pagination,
    state: Annotated[ClaimState | None, Query()] = None,
    bank_id: Annotated[int | None, id_query()] = None,
    funded: Annotated[
        bool | None,
        Query(
            description="Approved claims whose amount is (true) or is not (false) wholly reserved: "
            "`funded=false` lists what an approver cannot pay until the fund covers the shortfall"
        ),
    ] = None,
) -> Page[ClaimRead]:
    rows = repository.list_readable(
        session,
        caller,
        state=state,
        bank_id=bank_id,
        after_id=page.after_id,
        limit=page.fetch,
        funded=funded,
    )
    return page.page(
        rows, lambda c: ClaimRead.of(c, repository.receivable_fen(session, c.id)), lambda c: c.id
    )


@router.get("/{claim_id}", responses=_READ, tags=["bank", "bureau"], summary="A claim with its recoveries")
def read_claim(claim_id: IdPath, session: DbSession, caller: AnyCaller) -> ClaimDetail:
    return _detail(session, service.get_readable(session, caller, claim_id))


@router.post(
    "/{claim_id}/approve",
    response_model=ClaimDetail,
    responses=_WRITE,
    tags=["bureau"],
    summary="Approve (possibly reduced, with a reason); reserves the money when the fund can cover it",
)
def approve_claim(
    claim_id: IdPath,
    body: ClaimApproval,
    session: DbSession,
    settings: SettingsDep,
    caller: BureauReviewer,
    idem: IdempotencyDep,
) -> Response:
    def produce() -> ClaimDetail:
        assert caller.staff_id is not None
        claim = service.get_readable(session, caller, claim_id, lock=True)
        service.approve(
            session,
            settings,
            caller.actor,
            claim,
            reviewer_id=caller.staff_id,
            amount_fen=None if body.amount is None else to_fen(body.amount),
            reason=body.reason,
            day=business_today(settings),
            review_note=body.review_note,
        )
        return _detail(session, claim)

    return idem.run(body, 200, produce)


@router.post(
    "/{claim_id}/reject",
    response_model=ClaimDetail,
    responses=_WRITE,
    tags=["bureau"],
    summary="Reject, releasing any reservation",
)
def reject_claim(
    claim_id: IdPath,
    body: ClaimRejection,
    session: DbSession,
    settings: SettingsDep,
    caller: BureauReviewer,
    idem: IdempotencyDep,
) -> Response:
    def produce() -> ClaimDetail:
        assert caller.staff_id is not None
        claim = service.get_readable(session, caller, claim_id, lock=True)
        service.reject(
            session,
            caller.actor,
            claim,
            reviewer_id=caller.staff_id,
            reason=body.reason,
            day=business_today(settings),
        )
        return _detail(session, claim)

    return idem.run(body, 200, produce)


@router.post(
    "/{claim_id}/pay",
    response_model=ClaimDetail,
    responses=_WRITE,
    tags=["bureau"],
    summary="Confirm the payout (an approver other than the reviewer); the loan becomes compensated",
)
def pay_claim(
    claim_id: IdPath, session: DbSession, settings: SettingsDep, caller: BureauApprover, idem: IdempotencyDep
) -> Response:
    def produce() -> ClaimDetail:
        assert caller.staff_id is not None
        claim = service.get_readable(session, caller, claim_id, lock=True)
        service.pay(
            session, settings, caller.actor, claim, payer_id=caller.staff_id, day=business_today(settings)
        )
        return _detail(session, claim)

    return idem.run(None, 200, produce)


@router.post(
    "/{claim_id}/recoveries",
    status_code=201,
    response_model=ClaimDetail,
    responses=_WRITE,
    tags=["bank"],
    summary="Report money recovered after compensation (gross and collection costs)",
)
def report_recovery(
    claim_id: IdPath,
    body: RecoveryCreate,
    session: DbSession,
    settings: SettingsDep,
    caller: BankCaller,
    idem: IdempotencyDep,
) -> Response:
    def produce() -> ClaimDetail:
        claim = service.get_readable(session, caller, claim_id, lock=True)
        service.report_recovery(
            session,
            caller.actor,
            claim,
            bank_ref=body.bank_ref,
            gross_fen=to_fen(body.gross),
            costs_fen=to_fen(body.costs),
            day=body.date,
            today=business_today(settings),
        )
        return _detail(session, claim)

    return idem.run(body, 201, produce)


@router.post(
    "/{claim_id}/remittances",
    status_code=201,
    response_model=ClaimDetail,
    responses=_WRITE,
    tags=["bank"],
    summary="Report the remittance of the fund's share of recoveries",
)
def remit(
    claim_id: IdPath,
    body: RemittanceCreate,
    session: DbSession,
    settings: SettingsDep,
    caller: BankCaller,
    idem: IdempotencyDep,
) -> Response:
    def produce() -> ClaimDetail:
        claim = service.get_readable(session, caller, claim_id, lock=True)
        service.remit(
            session,
            caller.actor,
            claim,
            bank_ref=body.bank_ref,
            amount_fen=to_fen(body.amount),
            day=body.date,
            today=business_today(settings),
        )
        return _detail(session, claim)

    return idem.run(body, 201, produce)


@router.post(
    "/{claim_id}/close-collection",
    response_model=ClaimDetail,
    responses=_WRITE,
    tags=["bank"],
    summary="Close collection: the loan is written off",
)
def close_collection(
    claim_id: IdPath,
    body: CollectionClose,
    session: DbSession,
    settings: SettingsDep,
    caller: BankCaller,
    idem: IdempotencyDep,
) -> Response:
    def produce() -> ClaimDetail:
        claim = service.get_readable(session, caller, claim_id, lock=True)
        service.close_collection(
            session, settings, caller.actor, claim, day=body.date, today=business_today(settings)
        )
        return _detail(session, claim)

    return idem.run(body, 200, produce)
