from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from loanfund.audit import service
from loanfund.audit.models import AuditRecord
from loanfund.core.auth import BureauReader
from loanfund.core.dates import IsoDateTime
from loanfund.core.db import DbSession
from loanfund.core.errors import responses
from loanfund.core.pagination import Page, Pagination
from loanfund.core.params import id_query

router = APIRouter(prefix="/api/v1/audit", tags=["bureau"])


class AuditRead(BaseModel):
    id: int
    at: datetime
    actor_kind: str
    actor_id: int | None
    actor_name: str
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str | None
    request_id: str | None

    @classmethod
    def of(cls, r: AuditRecord) -> AuditRead:
        return cls(
            id=r.id,
            at=r.at,
            actor_kind=r.actor_kind,
            actor_id=r.actor_id,
            actor_name=r.actor_name,
            action=r.action,
            entity_type=r.entity_type,
            entity_id=r.entity_id,
            before=r.before,
            after=r.after,
            reason=r.reason,
            request_id=r.request_id,
        )


@router.get("", responses=responses(401, 403, 422, 503), summary="The audit log, newest first")
def list_audit(
    session: DbSession,
    caller: BureauReader,
    page: Pagination,
    entity_type: Annotated[str | None, Query(max_length=32)] = None,
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor_kind: Annotated[str | None, Query(pattern="^(bank|staff|enterprise|system)$")] = None,
    actor_id: Annotated[int | None, id_query()] = None,
    since: Annotated[IsoDateTime | None, Query()] = None,
    until: Annotated[IsoDateTime | None, Query()] = None,
) -> Page[AuditRead]:
    rows = service.list_records(
        session,
        entity_type=entity_type,
        entity_id=entity_id,
        action=action,
        actor_kind=actor_kind,
        actor_id=actor_id,
        since=since,
        until=until,
        after_id=page.after_id,
        limit=page.fetch,
    )
    return page.page(rows, AuditRead.of, lambda r: r.id)
