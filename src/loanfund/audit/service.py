"""The audit log: every mutation records who, what, when and the request, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import orjson
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from loanfund.core.bulk import insert_documents
from loanfund.core.context import request_id_var
from loanfund.core.db import utcnow


@dataclass(frozen=True)
class Actor:
    kind: str  # bank | staff | enterprise | system
    id: int | None
    name: str


SYSTEM = Actor(kind="system", id=None, name="system")


_PLAIN = (str, int, bool, float, type(None))


def _json_default(value: Any) -> Any:
    """What `json.dumps` does not write by itself: enums as their values, amounts and dates as text."""
    if isinstance(value, Enum):
        return value._value_
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _jsonable(value: Any) -> Any:
    """`value` with what JSON cannot hold converted as `_json_default` does (anything else unchanged)."""
    if type(value) in _PLAIN:  # exact types: an enum that is also a str is converted below
        return value
    if isinstance(value, dict | Mapping):
        # plain values inline: an audit record is mostly ints and strings
        return {
            (k if type(k) is str else str(k)): (v if type(v) in _PLAIN else _jsonable(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    try:
        return _json_default(value)
    except TypeError:
        return value


def _json_text(value: Any) -> str:
    """`json.dumps(_jsonable(value))` in one pass, by orjson: plain values, dates, enums, lists and dicts
    are written in C, the rest through `_json_default`. Keys are strings, as `Entry` types them."""
    return orjson.dumps(value, default=_json_default).decode()


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


@dataclass(frozen=True)
class Entry:
    """One audit record of a bulk write (see `record_many`)."""

    action: str
    entity_type: str
    entity_id: int | str
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    reason: str | None = None


def _entry_fields(e: Entry) -> dict[str, Any]:
    """An entry's own fields of its audit row, `before` and `after` as given."""
    return {
        "action": e.action,
        "entity_type": e.entity_type,
        "entity_id": str(e.entity_id),
        "before": e.before,
        "after": e.after,
        "reason": e.reason,
    }


def record_many(
    session: Session, actor: Actor, entries: Sequence[Entry], *, request_id: str | None = None
) -> None:
    """Write many audit records of one actor in one statement, in order, at one timestamp (what
    `record` writes, without an ORM object per record; `before` and `after` are written to JSON in one
    pass per column). The request id is the current request's unless given."""
    if not entries:
        return
    same = {
        "at": utcnow(),
        "actor_kind": actor.kind,
        "actor_id": actor.id,
        "actor_name": actor.name,
        "request_id": request_id if request_id is not None else request_id_var.get(),
    }
    insert_documents(session, _TABLE, [_entry_fields(e) for e in entries], same=same, encode=_json_text)


@dataclass(frozen=True)
class Attributed:
    """An audit record of another request than the one at hand (see `record_each`)."""

    actor: Actor
    request_id: str | None
    entry: Entry


def record_each(session: Session, records: Sequence[Attributed]) -> None:
    """Write the audit records of several requests done in one transaction (group commit), each with its
    own actor and request id, in one statement at one timestamp."""
    if not records:
        return
    rows = [
        {
            **_entry_fields(r.entry),
            "actor_kind": r.actor.kind,
            "actor_id": r.actor.id,
            "actor_name": r.actor.name,
            "request_id": r.request_id,
        }
        for r in records
    ]
    insert_documents(session, _TABLE, rows, same={"at": utcnow()}, encode=_json_text)


_TABLE: Table = AuditRecord.__table__  # type: ignore[assignment]


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
