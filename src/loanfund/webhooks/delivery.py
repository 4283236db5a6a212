"""The database side of delivering: claim due deliveries, record what each attempt got.

A claim is a short transaction: `SELECT … FOR UPDATE SKIP LOCKED` picks due deliveries no other
worker is claiming at that moment, and their `next_attempt_at` moves a lease into the future, so no
other worker takes them while they are sent (the send itself holds no lock and no transaction). A
worker that dies mid-send leaves its deliveries to come due again when the lease ends: they are sent
again with the same `webhook-id` (at least once). On SQLite every transaction takes the write lock
(`BEGIN IMMEDIATE`), which serialises claims the same way; run one worker there.

Recording an answer:
- 2xx: delivered; the endpoint's failing streak ends.
- 410: the receiver says the endpoint is gone: the endpoint is disabled and the delivery fails.
- anything else (another status, a redirect, a timeout, a refused connection or address): the next
  attempt waits the schedule's next step ± jitter, or the receiver's `Retry-After` on 429/503; once
  the schedule is used up the delivery fails. An endpoint whose deliveries have failed without a
  success for `webhook_disable_after_days` is disabled, and the attempt that disabled it says so in
  the endpoint's delivery log.
Deliveries of a disabled endpoint wait (pending, not attempted) until the bank enables it again.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, func, select, text, update
from sqlalchemy.orm import Session

from loanfund.audit.service import Actor, record
from loanfund.core.config import Settings
from loanfund.core.db import utcnow
from loanfund.webhooks import signing
from loanfund.webhooks.models import (
    DELIVERIES,
    EVENTS,
    DeliveryState,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from loanfund.webhooks.sender import Message, Outcome

log = logging.getLogger("loanfund.webhooks")
WORKER = Actor(kind="system", id=None, name="webhook-worker")
_PENDING = text("webhook_deliveries.state = 'pending'")  # a literal: the partial index's predicate


def signing_secrets(settings: Settings, endpoint: WebhookEndpoint, now: datetime) -> tuple[str, ...]:
    """The secrets that sign a message now: the current one, and the previous one during its overlap."""
    current = signing.secret_for(settings, endpoint.secret_salt)
    if (
        endpoint.previous_secret_salt is not None
        and endpoint.previous_secret_expires_at is not None
        and endpoint.previous_secret_expires_at > now
    ):
        return current, signing.secret_for(settings, endpoint.previous_secret_salt)
    return (current,)


def claim(session: Session, settings: Settings, limit: int) -> list[tuple[Message, str]]:
    """Take up to `limit` due deliveries of enabled endpoints for `webhook_claim_lease_s`; each message
    with the claim's token."""
    d, e = WebhookDelivery, WebhookEndpoint
    now = utcnow()
    ids = list(
        session.scalars(
            select(d.id)
            .join(e, e.id == d.endpoint_id)
            .where(_PENDING, d.next_attempt_at <= now, e.enabled)
            .order_by(d.next_attempt_at, d.id)
            .limit(limit)
            .with_for_update(of=d, skip_locked=True)
        )
    )
    if not ids:
        return []
    token = secrets.token_hex(8)
    lease = now + timedelta(seconds=settings.webhook_claim_lease_s)
    session.execute(
        update(DELIVERIES).where(DELIVERIES.c.id.in_(ids)).values(next_attempt_at=lease, claim_token=token)
    )
    rows = session.execute(
        select(d.id, e, WebhookEvent.public_id, WebhookEvent.payload)
        .join(e, e.id == d.endpoint_id)
        .join(WebhookEvent, WebhookEvent.id == d.event_id)
        .where(d.id.in_(ids))
        .order_by(d.id)
    )
    return [
        (
            Message(
                delivery_id=delivery_id,
                endpoint_id=endpoint.id,
                url=endpoint.url,
                message_id=public_id,
                payload=payload.encode(),
                signing_secrets=signing_secrets(settings, endpoint, now),
            ),
            token,
        )
        for delivery_id, endpoint, public_id, payload in rows
    ]


def release(session: Session, claimed: Sequence[tuple[Message, str]]) -> None:
    """Give back claimed messages that were not sent (a worker stopping): due again at once."""
    d = DELIVERIES.c
    for message, token in claimed:
        session.execute(
            update(DELIVERIES)
            .where(d.id == message.delivery_id, d.claim_token == token)
            .values(next_attempt_at=utcnow(), claim_token=None)
        )


def disable(session: Session, endpoint: WebhookEndpoint, reason: str, actor: Actor, now: datetime) -> None:
    endpoint.enabled = False
    endpoint.disabled_reason = reason
    endpoint.disabled_at = now
    record(
        session,
        actor,
        "webhook_endpoint.disable",
        "webhook_endpoint",
        endpoint.id,
        before={"enabled": True},
        after={"enabled": False},
        reason=reason,
    )
    log.warning("webhook endpoint disabled", extra={"endpoint_id": endpoint.id, "reason": reason})


def _wait(settings: Settings, tries: int, outcome: Outcome) -> float:
    if outcome.retry_after_s is not None and outcome.status_code in (429, 503):
        return min(outcome.retry_after_s, settings.webhook_retry_after_max_s)
    step = settings.webhook_retry_schedule_s[tries - 1]
    jitter = settings.webhook_retry_jitter
    return step * random.uniform(1 - jitter, 1 + jitter)


def record_outcomes(
    session: Session, settings: Settings, results: Sequence[tuple[Message, str, Outcome]]
) -> None:
    """Write what each attempt got and decide what comes next (see the module's docstring). Endpoints
    are locked before deliveries, each in id order, so that two workers recording never deadlock."""
    if not results:
        return
    now = utcnow()
    endpoints = {
        ep.id: ep
        for ep in session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.id.in_({m.endpoint_id for m, _, _ in results}))
            .order_by(WebhookEndpoint.id)
            .with_for_update(key_share=True)  # FOR NO KEY UPDATE: emitters' FOR KEY SHARE go on
        )
    }
    deliveries = {
        dv.id: dv
        for dv in session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.id.in_({m.delivery_id for m, _, _ in results}))
            .order_by(WebhookDelivery.id)
            .with_for_update()
        )
    }
    limit = len(settings.webhook_retry_schedule_s)
    for message, token, outcome in results:
        delivery, endpoint = deliveries.get(message.delivery_id), endpoints.get(message.endpoint_id)
        if delivery is None or endpoint is None:
            continue  # the endpoint was deleted while its message was out
        attempt = WebhookAttempt(
            delivery_id=delivery.id,
            attempted_at=outcome.started_at,
            duration_ms=outcome.duration_ms,
            status_code=outcome.status_code,
            error=outcome.error,
            response_excerpt=outcome.excerpt,
        )
        session.add(attempt)
        delivery.attempts += 1
        delivery.last_attempt_at = outcome.started_at
        delivery.last_status = outcome.status_code
        delivery.last_error = outcome.error
        ours = delivery.claim_token == token and delivery.state is DeliveryState.pending
        if ours:
            delivery.claim_token = None
        if outcome.ok:
            if delivery.state is not DeliveryState.succeeded:
                delivery.state = DeliveryState.succeeded
                delivery.delivered_at = now
            if endpoint.failing_since is not None:
                endpoint.failing_since = None
        elif not ours:
            pass  # the answer came after the lease ran out and another attempt was made: logged only
        elif outcome.status_code == 410:
            delivery.state = DeliveryState.failed
            if endpoint.enabled:
                reason = "the receiver answered 410 Gone"
                disable(session, endpoint, reason, WORKER, now)
                attempt.note = f"endpoint disabled: {reason}"
        else:
            delivery.tries += 1
            if delivery.tries > limit:
                delivery.state = DeliveryState.failed
                attempt.note = f"given up after {delivery.tries} attempts"
            else:
                delivery.next_attempt_at = now + timedelta(seconds=_wait(settings, delivery.tries, outcome))
            if endpoint.failing_since is None:
                endpoint.failing_since = outcome.started_at
            days = settings.webhook_disable_after_days
            if endpoint.enabled and now - endpoint.failing_since >= timedelta(days=days):
                reason = (
                    f"deliveries have failed since {endpoint.failing_since:%Y-%m-%d %H:%M:%S} UTC, "
                    f"{days:g} days or more without a success"
                )
                disable(session, endpoint, reason, WORKER, now)
                attempt.note = "; ".join(filter(None, [attempt.note, f"endpoint disabled: {reason}"]))
        log.info(
            "webhook attempt",
            extra={
                "delivery_id": delivery.id,
                "endpoint_id": endpoint.id,
                "status": outcome.status_code,
                "error": outcome.error,
                "duration_ms": outcome.duration_ms,
                "state": delivery.state.value,
            },
        )
    session.flush()


def purge(session: Session, retention_days: int) -> tuple[int, int]:
    """Delete deliveries finished (delivered or failed) more than `retention_days` ago, with their
    attempts, then the events no delivery refers to; the numbers of deliveries and events deleted."""
    cutoff = utcnow() - timedelta(days=retention_days)
    d = DELIVERIES.c
    finished = delete(DELIVERIES).where(
        d.state != DeliveryState.pending, func.coalesce(d.last_attempt_at, d.created_at) < cutoff
    )
    deliveries = int(getattr(session.execute(finished), "rowcount", 0) or 0)
    orphans = delete(EVENTS).where(
        EVENTS.c.occurred_at < cutoff,
        ~exists().where(d.event_id == EVENTS.c.id),
    )
    events = int(getattr(session.execute(orphans), "rowcount", 0) or 0)
    return deliveries, events
