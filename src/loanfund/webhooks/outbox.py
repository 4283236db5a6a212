"""The transactional outbox: an event is written in the transaction of the change that causes it.

A domain service calls `emit` (or `emit_many` for many events at once) inside its transaction. The
event row and one delivery row per enabled endpoint that takes the event's type are inserted right
there, so a committed change always has its deliveries waiting and a rolled-back one leaves none. The
worker (`webhooks.worker`) sends them afterwards. An event no endpoint takes is not written at all: a
bank without endpoints costs its write path one indexed query per call, nothing more.

On PostgreSQL the transaction also sends `NOTIFY loanfund_webhooks`, delivered on commit, which wakes
an idle worker at once instead of at its next poll.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from loanfund.core.db import utcnow
from loanfund.webhooks.models import (
    DELIVERIES,
    ENDPOINTS,
    DeliveryState,
    WebhookEvent,
    subscribed,
)

CHANNEL = "loanfund_webhooks"


class EventType(enum.StrEnum):
    application_routed = "application.routed"
    claim_approved = "claim.approved"  # approved in full or reduced: `data.approved` is the amount
    claim_rejected = "claim.rejected"
    claim_paid = "claim.paid"
    loan_state_changed = "loan.state_changed"
    breaker_changed = "breaker.changed"
    status_report_processed = "status_report.processed"
    month_reopened = "month.reopened"


PING = "ping"  # POST /webhooks/endpoints/{id}/test: sent to that endpoint whatever its event types


@dataclass(frozen=True)
class Outgoing:
    """An event to emit: for one bank (or every bank, `bank_id` None), its type and its data — the
    resource's API representation, as JSON-ready values."""

    bank_id: int | None
    type: str  # an EventType, or PING
    data: Mapping[str, Any]


def new_event_id() -> str:
    return f"msg_{secrets.token_urlsafe(18)}"


def as_data(data: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    """A pydantic schema (the API representation) or a mapping, as JSON-ready values."""
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    return dict(data)


def _timestamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def body(event_id: str, event_type: str, occurred_at: datetime, data: Mapping[str, Any]) -> str:
    """The body every delivery of the event sends: `type`, `id`, `occurred_at` and `data`."""
    envelope = {"type": event_type, "id": event_id, "occurred_at": _timestamp(occurred_at), "data": data}
    return orjson.dumps(envelope).decode()


def emit(session: Session, bank_id: int | None, event_type: str, data: BaseModel | Mapping[str, Any]) -> int:
    """Emit one event in the session's transaction; the number of deliveries it queued."""
    return emit_many(session, [Outgoing(bank_id, event_type, as_data(data))])


def emit_many(session: Session, events: Sequence[Outgoing]) -> int:
    """Emit many events in the session's transaction with one query for the endpoints, one insert of
    the events and one of their deliveries; the number of deliveries queued."""
    return len(queue(session, events))


def queue(session: Session, events: Sequence[Outgoing], *, endpoint_id: int | None = None) -> list[int]:
    """`emit_many`, answering the ids of the deliveries queued. With `endpoint_id`, only to that
    endpoint, whatever its event types (a test ping)."""
    if not events:
        return []
    e = ENDPOINTS.c
    # FOR KEY SHARE (PostgreSQL): an endpoint deleted meanwhile waits for this transaction, instead of
    # this transaction — a payout, a batch — failing on its deliveries' foreign key
    stmt = select(e.id, e.bank_id, e.event_types).where(e.enabled).with_for_update(read=True, key_share=True)
    if endpoint_id is not None:
        stmt = stmt.where(e.id == endpoint_id)
    else:
        banks = {ev.bank_id for ev in events}
        if None not in banks:
            stmt = stmt.where(e.bank_id.in_(banks))
    endpoints = session.execute(stmt).all()
    if not endpoints:
        return []
    plans = []
    for ev in events:
        targets = [
            ep.id
            for ep in endpoints
            if (ev.bank_id is None or ep.bank_id == ev.bank_id)
            and (endpoint_id is not None or subscribed(ep.event_types, ev.type))
        ]
        if targets:
            plans.append((ev, targets))
    if not plans:
        return []
    now = utcnow()
    rows = []
    for ev, _ in plans:
        public_id = new_event_id()
        rows.append(
            {
                "public_id": public_id,
                "type": str(ev.type),
                "bank_id": ev.bank_id,
                "occurred_at": now,
                "payload": body(public_id, str(ev.type), now, ev.data),
            }
        )
    ids = session.scalars(
        insert(WebhookEvent).returning(WebhookEvent.id, sort_by_parameter_order=True), rows
    ).all()
    deliveries = [
        {
            "event_id": event_id,
            "endpoint_id": target,
            "state": DeliveryState.pending,
            "tries": 0,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for event_id, (_, targets) in zip(ids, plans, strict=True)
        for target in targets
    ]
    queued = session.scalars(
        insert(DELIVERIES).returning(DELIVERIES.c.id, sort_by_parameter_order=True), deliveries
    ).all()
    notify(session)
    return list(queued)


def listening_banks(session: Session, bank_ids: Iterable[int], event_type: str) -> set[int]:
    """Which of these banks have an enabled endpoint taking `event_type`: one query, so that a path
    emitting many events builds none of them when nobody listens."""
    e = ENDPOINTS.c
    rows = session.execute(select(e.bank_id, e.event_types).where(e.enabled, e.bank_id.in_(set(bank_ids))))
    return {bank_id for bank_id, types in rows if subscribed(types, event_type)}


def notify(session: Session) -> None:
    """Wake the workers when this transaction commits (PostgreSQL; SQLite workers poll)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))
