"""The audit log: every mutation records who, what, when and the request, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from loanfund.core.context import request_id_var


@dataclass(frozen=True)
class Actor:
    kind: str  # bank | staff | enterprise | system
    id: int | None
    name: str


SYSTEM = Actor(kind="system", id=None, name="system")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def snapshot(obj: Any, fields: list[str]) -> dict[str, Any]:
    return {f: _jsonable(getattr(obj, f)) for f in fields}


def record(
    session: Session,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: int | str,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> AuditRecord:
    rec = AuditRecord(
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_name=actor.name,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        before=_jsonable(before) if before is not None else None,
        after=_jsonable(after) if after is not None else None,
        reason=reason,
        request_id=request_id_var.get(),
    )
    session.add(rec)
    return rec


def list_records(
    session: Session,
    *,
    entity_type: str | None,
    entity_id: str | None,
    action: str | None,
    actor_kind: str | None,
    actor_id: int | None,
    since: datetime | None,
    until: datetime | None,
    after_id: int | None,
    limit: int,
) -> list[AuditRecord]:
    stmt = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(limit)
    if entity_type:
        stmt = stmt.where(AuditRecord.entity_type == entity_type)
    if entity_id:
        stmt = stmt.where(AuditRecord.entity_id == entity_id)
    if action:
        stmt = stmt.where(AuditRecord.action == action)
    if actor_kind:
        stmt = stmt.where(AuditRecord.actor_kind == actor_kind)
    if actor_id is not None:
        stmt = stmt.where(AuditRecord.actor_id == actor_id)
    if since:
        stmt = stmt.where(AuditRecord.at >= since)
    if until:
        stmt = stmt.where(AuditRecord.at < until)
    if after_id is not None:
        stmt = stmt.where(AuditRecord.id < after_id)
    return list(session.scalars(stmt))
