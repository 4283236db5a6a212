"""Webhook endpoints, the outbox of events, their deliveries to each endpoint and every attempt."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Enum, ForeignKey, Index, String, Table, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from loanfund.core.db import Base, TimestampMixin, utcnow


class DeliveryState(enum.StrEnum):
    pending = "pending"  # waiting for its next attempt (or in a worker's hands until its lease ends)
    succeeded = "succeeded"  # the receiver answered 2xx
    failed = "failed"  # retries used up, or the receiver answered 410


class WebhookEndpoint(TimestampMixin, Base):
    """Where a bank wants its events: a URL, the event types it takes (null: all) and whether it is on.

    The signing secret is not stored: it is derived from the server's secret key and a random salt
    (`webhooks.signing`). During a rotation the previous salt still signs until its expiry."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (UniqueConstraint("bank_id", "url", name="uq_webhook_endpoints_bank_url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(200))
    event_types: Mapped[list[str] | None] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None]
    failing_since: Mapped[datetime | None]  # first failed attempt since the last success
    secret_salt: Mapped[str] = mapped_column(String(64))
    previous_secret_salt: Mapped[str | None] = mapped_column(String(64))
    previous_secret_expires_at: Mapped[datetime | None]


class WebhookEvent(Base):
    """One event, written in the transaction of the change that caused it (the transactional outbox).

    `payload` is the exact body every delivery sends, so that a retry is byte-for-byte the same."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)  # `id` in the body, `webhook-id`
    type: Mapped[str] = mapped_column(String(40))
    bank_id: Mapped[int | None] = mapped_column(ForeignKey("banks.id"))  # null: every bank
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    payload: Mapped[str] = mapped_column(Text)


class WebhookDelivery(Base):
    """An event on its way to one endpoint. `tries` counts the attempts since it was (re)queued, which
    pick the next wait from the schedule; `attempts` counts them all."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # what a worker looks for: only the pending deliveries are in it
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
        Index("ix_webhook_deliveries_event", "event_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    state: Mapped[DeliveryState] = mapped_column(
        Enum(DeliveryState, native_enum=False, length=16, validate_strings=True),
        default=DeliveryState.pending,
    )
    tries: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    last_attempt_at: Mapped[datetime | None]
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookAttempt(Base):
    """One attempt to deliver: what the receiver answered (or what went wrong), and how long it took."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    duration_ms: Mapped[int]
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(500))
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)  # e.g. why the endpoint was disabled


ENDPOINTS: Table = WebhookEndpoint.__table__  # type: ignore[assignment]
EVENTS: Table = WebhookEvent.__table__  # type: ignore[assignment]
DELIVERIES: Table = WebhookDelivery.__table__  # type: ignore[assignment]


def subscribed(event_types: list[str] | None, event_type: str) -> bool:
    """Whether an endpoint taking `event_types` (null: all) takes `event_type`."""
    return event_types is None or event_type in event_types
