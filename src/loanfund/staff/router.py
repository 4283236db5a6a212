from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response, status

from loanfund.banks import service as bank_service
from loanfund.core.auth import BureauAdmin, SettingsDep
from loanfund.core.db import DbSession
from loanfund.core.errors import responses
from loanfund.core.idempotency import IdempotencyDep
from loanfund.core.pagination import Page, Pagination
from loanfund.core.params import IdPath, id_query
from loanfund.staff import service
from loanfund.staff.schemas import IssuedKeyRead, KeyCreate, KeyRead, StaffCreate, StaffRead

router = APIRouter(prefix="/api/v1", tags=["bureau"])
_ERR = responses(401, 403, 404, 409, 422, 503)


def _issued(issued: service.IssuedKey) -> IssuedKeyRead:
    return IssuedKeyRead(**KeyRead.of(issued.key).model_dump(), key=issued.secret)


@router.post(
    "/staff",
    status_code=status.HTTP_201_CREATED,
    response_model=StaffRead,
    responses=_ERR,
    summary="Create a staff member (admin)",
)
def create_staff(
    body: StaffCreate, session: DbSession, caller: BureauAdmin, idem: IdempotencyDep
) -> Response:
    return idem.run(
        body,
        status.HTTP_201_CREATED,
        lambda: StaffRead.of(
            service.create_staff(session, caller.actor, name=body.name, role=body.role, login=body.login)
        ),
    )


@router.get("/staff", responses=_ERR, summary="List staff (admin)")
def list_staff(session: DbSession, caller: BureauAdmin, page: Pagination) -> Page[StaffRead]:
    rows = service.list_staff(session, after_id=page.after_id, limit=page.fetch)
    return page.page(rows, StaffRead.of, lambda s: s.id)


def _set_active(
    session: DbSession, caller: BureauAdmin, idem: IdempotencyDep, staff_id: int, active: bool
) -> Response:
    def produce() -> StaffRead:
        staff = service.get_staff(session, staff_id)
        return StaffRead.of(service.set_staff_active(session, caller.actor, staff, active))

    return idem.run(None, 200, produce)


@router.post(
    "/staff/{staff_id}/deactivate",
    response_model=StaffRead,
    responses=_ERR,
    summary="Deactivate a staff member (admin)",
)
def deactivate_staff(
    staff_id: IdPath, session: DbSession, caller: BureauAdmin, idem: IdempotencyDep
) -> Response:
    return _set_active(session, caller, idem, staff_id, False)


@router.post(
    "/staff/{staff_id}/activate",
    response_model=StaffRead,
    responses=_ERR,
    summary="Reactivate a staff member (admin)",
)
def activate_staff(
    staff_id: IdPath, session: DbSession, caller: BureauAdmin, idem: IdempotencyDep
) -> Response:
    return _set_active(session, caller, idem, staff_id, True)


# Issuing a key takes no Idempotency-Key: its answer holds the secret, which is never stored, so there is
# no first answer to replay. A retry issues another key; the one whose answer was lost can be revoked.
@router.post(
    "/staff/{staff_id}/keys",
    status_code=status.HTTP_201_CREATED,
    responses=_ERR,
    summary="Issue a key for a staff member (admin); shown once",
)
def issue_staff_key(
    staff_id: IdPath, body: KeyCreate, session: DbSession, settings: SettingsDep, caller: BureauAdmin
) -> IssuedKeyRead:
    staff = service.get_staff(session, staff_id)
    return _issued(service.issue_key(session, settings, caller.actor, staff=staff, label=body.label))


@router.post(
    "/banks/{bank_id}/keys",
    status_code=status.HTTP_201_CREATED,
    responses=_ERR,
    summary="Issue a key for a partner bank (admin); shown once",
)
def issue_bank_key(
    bank_id: IdPath, body: KeyCreate, session: DbSession, settings: SettingsDep, caller: BureauAdmin
) -> IssuedKeyRead:
    bank = bank_service.get_bank(session, bank_id)
    return _issued(service.issue_key(session, settings, caller.actor, bank=bank, label=body.label))


@router.get("/keys", responses=_ERR, summary="List keys, never their secrets (admin)")
def list_keys(
    session: DbSession,
    caller: BureauAdmin,
    page: Pagination,
    bank_id: Annotated[int | None, id_query()] = None,
    staff_id: Annotated[int | None, id_query()] = None,
) -> Page[KeyRead]:
    rows = service.list_keys(
        session, bank_id=bank_id, staff_id=staff_id, after_id=page.after_id, limit=page.fetch
    )
    return page.page(rows, KeyRead.of, lambda k: k.id)


@router.post("/keys/{key_id}/revoke", response_model=KeyRead, responses=_ERR, summary="Revoke a key (admin)")
def revoke_key(key_id: IdPath, session: DbSession, caller: BureauAdmin, idem: IdempotencyDep) -> Response:
    return idem.run(
        None,
        200,
        lambda: KeyRead.of(service.revoke_key(session, caller.actor, service.get_key(session, key_id))),
    )
