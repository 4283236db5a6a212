"""Who is calling: `Authorization: Bearer <key>` resolved to a bank or a bureau staff principal.

Wrong or revoked key → 401; right key, wrong role → 403. Object-level scoping (another bank's record
→ 404) happens in the repositories, which take the principal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.orm import Session

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
    key_id: int | None  # None for a console session (web/console/auth.py)
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


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_settings)]


@cache
def _key_lookup() -> Select[Any]:
    """The key with its owner's fields (a bank's code; a staff member's name, role and status) in one
    query of plain columns: it runs on every request."""
    from loanfund.banks.models import Bank  # local: banks depends on this module

    key, bank, staff = ApiKey.__table__, Bank.__table__, Staff.__table__
    return (
        select(
            key.c.id,
            key.c.key_hash,
            key.c.revoked_at,
            key.c.last_used_at,
            key.c.bank_id,
            key.c.staff_id,
            bank.c.code,
            staff.c.name,
            staff.c.role,
            staff.c.active,
        )
        .select_from(key)
        .outerjoin(bank, bank.c.id == key.c.bank_id)
        .outerjoin(staff, staff.c.id == key.c.staff_id)
        .where(key.c.key_hash == bindparam("digest"))
    )


class KeyCache:
    """Keys verified in the last `LOANFUND_KEY_CACHE_S` seconds, per process, so that a client's
    requests do not each ask the database. Only keys found valid are kept; revoking a key or
    deactivating a staff member empties the cache of the process that did it at once, and every other
    process's within the time-to-live. Bounded: past `limit` keys it starts afresh."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str, ttl: float) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None or time.monotonic() - entry[0] > ttl:
            return None
        return entry[1]

    def put(self, digest: str, principal: Principal) -> None:
        with self._lock:
            if len(self._entries) >= self.limit:
                self._entries.clear()
            self._entries[digest] = (time.monotonic(), principal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


KEYS = KeyCache()


def _look_up(session: Session, settings: Settings, digest: str) -> Principal:
    row = session.execute(_key_lookup(), {"digest": digest}).first()
    if row is None or row.revoked_at is not None or not same(row.key_hash, digest):
        raise Unauthorized("The key is unknown or revoked")
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > timedelta(seconds=settings.key_touch_interval_s):
        session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
    if row.bank_id is not None:
        assert row.code is not None
        return Principal(kind="bank", key_id=row.id, name=f"bank:{row.code}", bank_id=row.bank_id)
    if row.staff_id is None or not row.active:
        raise Unauthorized("The key's owner is deactivated")
    return Principal(
        kind="staff", key_id=row.id, name=f"staff:{row.name}", staff_id=row.staff_id, role=row.role
    )


async def authenticate(
    session: DbSession,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller. A key verified within `key_cache_s` is answered from this process's memory, on the
    event loop; otherwise the database is asked (in the thread pool) and the answer kept."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized()
    digest = hash_secret(settings.secret_key.get_secret_value(), credentials.credentials)
    ttl = settings.key_cache_s
    if ttl > 0 and (known := KEYS.get(digest, ttl)) is not None:
        return known
    principal = await run_in_threadpool(_look_up, session, settings, digest)
    if ttl > 0:
        KEYS.put(digest, principal)
    return principal


AnyCaller = Annotated[Principal, Depends(authenticate)]


async def _require_bank(principal: AnyCaller) -> Principal:
    if not principal.is_bank:
        raise Forbidden("This endpoint is for partner banks", code="bank_only")
    return principal


def require_staff(*roles: Role) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """Any active staff member when no role is given (reads); otherwise one of `roles`."""

    async def dep(principal: AnyCaller) -> Principal:
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
