"""Who is calling: `Authorization: Bearer <key>` resolved to a bank or a bureau staff principal.

Wrong or revoked key → 401; right key, wrong role → 403. Object-level scoping (another bank's record
→ 404) happens in the repositories, which take the principal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select, update

from loanfund.audit.service import Actor
from loanfund.core.config import Settings
from loanfund.core.db import DbSession, utcnow
from loanfund.core.errors import Forbidden, Unauthorized
from loanfund.core.security import hash_secret, same
from loanfund.staff.models import ApiKey, Role, Staff

bearer = HTTPBearer(auto_error=False, description="A bank key or a bureau staff key")


@dataclass(frozen=True)
class Principal:
    kind: str  # "bank" | "staff"
    key_id: int
    name: str
    bank_id: int | None = None
    staff_id: int | None = None
    role: Role | None = None

    @property
    def is_bank(self) -> bool:
        return self.kind == "bank"

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"

    @property
    def actor(self) -> Actor:
        return Actor(kind=self.kind, id=self.bank_id if self.is_bank else self.staff_id, name=self.name)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_settings)]


def authenticate(
    session: DbSession,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    from loanfund.banks.models import Bank  # local: banks depends on this module

    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized()
    digest = hash_secret(settings.secret_key.get_secret_value(), credentials.credentials)
    # the key and, for a bank's key, the bank's code in one query
    row = session.execute(
        select(ApiKey, Bank.code).outerjoin(Bank, Bank.id == ApiKey.bank_id).where(ApiKey.key_hash == digest)
    ).first()
    key, bank_code = (row[0], row[1]) if row is not None else (None, None)
    if key is None or key.revoked_at is not None or not same(key.key_hash, digest):
        raise Unauthorized("The key is unknown or revoked")
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > timedelta(seconds=settings.key_touch_interval_s):
        session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
    if key.bank_id is not None:
        assert bank_code is not None
        return Principal(kind="bank", key_id=key.id, name=f"bank:{bank_code}", bank_id=key.bank_id)
    staff = session.get(Staff, key.staff_id)
    if staff is None or not staff.active:
        raise Unauthorized("The key's owner is deactivated")
    return Principal(
        kind="staff", key_id=key.id, name=f"staff:{staff.name}", staff_id=staff.id, role=staff.role
    )


AnyCaller = Annotated[Principal, Depends(authenticate)]


def _require_bank(principal: AnyCaller) -> Principal:
    if not principal.is_bank:
        raise Forbidden("This endpoint is for partner banks", code="bank_only")
    return principal


def require_staff(*roles: Role) -> Callable[[Principal], Principal]:
    """Any active staff member when no role is given (reads); otherwise one of `roles`."""

    def dep(principal: AnyCaller) -> Principal:
        if not principal.is_staff:
            raise Forbidden("This endpoint is for bureau staff", code="bureau_only")
        if roles and principal.role not in roles:
            wanted = " or ".join(r.value for r in roles)
            raise Forbidden(f"This action needs the {wanted} role", code="role_required")
        return principal

    return dep


BankCaller = Annotated[Principal, Depends(_require_bank)]
BureauReader = Annotated[Principal, Depends(require_staff())]
BureauOfficer = Annotated[Principal, Depends(require_staff(Role.officer))]
BureauApprover = Annotated[Principal, Depends(require_staff(Role.approver))]
BureauAdmin = Annotated[Principal, Depends(require_staff(Role.admin))]
