from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from loanfund.banks import repository, service
from loanfund.banks.models import BankStatus
from loanfund.banks.schemas import BankCreate, BankRead, BankUpdate, PartnerBankRead, StatusChange
from loanfund.core.auth import AnyCaller, BankCaller, BureauOfficer, SettingsDep
from loanfund.core.db import DbSession
from loanfund.core.errors import NotFound, responses
from loanfund.core.pagination import Page, Pagination
from loanfund.core.params import IdPath
from loanfund.core.ratelimit import limit_public

router = APIRouter(prefix="/api/v1/banks")
public_router = APIRouter(prefix="/api/v1")
_ERR = responses(401, 403, 404, 409, 422, 503)


@public_router.get(
    "/partner-banks",
    responses=responses(422, 429, 503),
    tags=["public"],
    summary="The partner banks an application may name (no key; public details only; rate-limited)",
    dependencies=[Depends(limit_public)],
)
def list_partner_banks(session: DbSession, page: Pagination) -> Page[PartnerBankRead]:
    rows = repository.list_public(session, after_id=page.after_id, limit=page.fetch)
    return page.page(rows, PartnerBankRead.of, lambda b: b.id)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=_ERR,
    tags=["bureau"],
    summary="Register a partner bank",
)
def create_bank(
    body: BankCreate, session: DbSession, settings: SettingsDep, caller: BureauOfficer
) -> BankRead:
    bank = service.create_bank(
        session,
        caller.actor,
        code=body.code,
        name=body.name,
        fund_share=body.fund_share if body.fund_share is not None else settings.default_fund_share,
        lending_quota=body.lending_quota,
    )
    return BankRead.of(bank)


@router.get("", responses=_ERR, tags=["bureau", "bank"], summary="List partner banks (a bank sees itself)")
def list_banks(
    session: DbSession,
    caller: AnyCaller,
    page: Pagination,
    status: Annotated[BankStatus | None, Query()] = None,
) -> Page[BankRead]:
    rows = repository.list_readable(session, caller, status=status, after_id=page.after_id, limit=page.fetch)
    return page.page(rows, BankRead.of, lambda b: b.id)


@router.get("/me", responses=_ERR, tags=["bank"], summary="The calling bank's own profile")
def my_bank(session: DbSession, caller: BankCaller) -> BankRead:
    assert caller.bank_id is not None
    return BankRead.of(service.get_bank(session, caller.bank_id))


def _readable(session: DbSession, caller: AnyCaller, bank_id: int) -> BankRead:
    bank = repository.get_readable(session, caller, bank_id)
    if bank is None:
        raise NotFound("No such bank", code="bank_not_found")
    return BankRead.of(bank)


@router.get("/{bank_id}", responses=_ERR, tags=["bureau", "bank"], summary="Read a partner bank")
def read_bank(bank_id: IdPath, session: DbSession, caller: AnyCaller) -> BankRead:
    return _readable(session, caller, bank_id)


@router.patch(
    "/{bank_id}", responses=_ERR, tags=["bureau"], summary="Update a bank's name or cooperation terms"
)
def update_bank(bank_id: IdPath, body: BankUpdate, session: DbSession, caller: BureauOfficer) -> BankRead:
    bank = service.get_bank(session, bank_id)
    service.update_bank(
        session,
        caller.actor,
        bank,
        name=body.name,
        fund_share=body.fund_share,
        lending_quota=body.lending_quota,
        clear_lending_quota=body.clear_lending_quota,
    )
    return BankRead.of(bank)


@router.post("/{bank_id}/suspend", responses=_ERR, tags=["bureau"], summary="Suspend a partner bank")
def suspend_bank(bank_id: IdPath, body: StatusChange, session: DbSession, caller: BureauOfficer) -> BankRead:
    bank = service.get_bank(session, bank_id)
    return BankRead.of(service.set_status(session, caller.actor, bank, BankStatus.suspended, body.reason))


@router.post("/{bank_id}/reinstate", responses=_ERR, tags=["bureau"], summary="Reinstate a suspended bank")
def reinstate_bank(
    bank_id: IdPath, body: StatusChange, session: DbSession, caller: BureauOfficer
) -> BankRead:
    bank = service.get_bank(session, bank_id)
    return BankRead.of(service.set_status(session, caller.actor, bank, BankStatus.active, body.reason))
