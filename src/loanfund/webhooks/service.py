"""A bank's webhook endpoints: create, change, delete, rotate the secret, ping; the delivery log and a
manual redelivery. A bank sees and changes only its own endpoints (another bank's are 404); bureau
staff read them all. Every change is audited — never with the secret, which is shown once."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loanfund.audit.service import Actor, record, snapshot
from loanfund.core.auth import Principal
from loanfund.core.config import Settings
from loanfund.core.db import utcnow
from loanfund.core.errors import Conflict, InvalidInput, NotFound
from loanfund.webhooks import outbox, signing
from loanfund.webhooks.addresses import url_problem
from loanfund.webhooks.models import (
    DeliveryState,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from loanfund.webhooks.schemas import EndpointCreate, EndpointUpdate

_FIELDS = ["bank_id", "url", "description", "event_types", "enabled", "disabled_reason"]


def _not_found() -> NotFound:
    return NotFound("No such webhook endpoint", code="webhook_endpoint_not_found")


def _check_url(settings: Settings, url: str) -> None:
    problem = url_problem(settings, url)
    if problem:
        raise InvalidInput(
            f"This URL cannot receive webhooks: {problem}",
            code="webhook_url_not_allowed",
            details=[{"field": "url", "message": problem}],
        )


def _url_taken(session: Session, bank_id: int, url: str, but: int | None = None) -> None:
    stmt = select(WebhookEndpoint.id).where(WebhookEndpoint.bank_id == bank_id, WebhookEndpoint.url == url)
    if but is not None:
        stmt = stmt.where(WebhookEndpoint.id != but)
    existing = session.scalar(stmt)
    if existing is not None:
        raise Conflict(
            "The bank already has an endpoint with this URL",
            code="webhook_endpoint_exists",
            details={"endpoint_id": existing},
        )


def _enable(endpoint: WebhookEndpoint) -> None:
    endpoint.enabled = True
    endpoint.disabled_reason = None
    endpoint.disabled_at = None
    endpoint.failing_since = None


# --- reading -------------------------------------------------------------------------------------------


def get_readable(
    session: Session, principal: Principal, endpoint_id: int, *, lock: bool = False
) -> WebhookEndpoint:
    stmt = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
    if principal.is_bank:
        stmt = stmt.where(WebhookEndpoint.bank_id == principal.bank_id)
    if lock:
        stmt = stmt.with_for_update()
    endpoint = session.scalar(stmt)
    if endpoint is None:
        raise _not_found()
    return endpoint


def list_readable(
    session: Session, principal: Principal, *, bank_id: int | None, after_id: int | None, limit: int
) -> list[WebhookEndpoint]:
    stmt = select(WebhookEndpoint).order_by(WebhookEndpoint.id).limit(limit)
    if principal.is_bank:
        stmt = stmt.where(WebhookEndpoint.bank_id == principal.bank_id)
    if bank_id is not None:
        stmt = stmt.where(WebhookEndpoint.bank_id == bank_id)
    if after_id is not None:
        stmt = stmt.where(WebhookEndpoint.id > after_id)
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class DeliveryView:
    delivery: WebhookDelivery
    event_id: str
    event_type: str
    attempts: list[WebhookAttempt]


def _views(session: Session, rows: list[tuple[WebhookDelivery, str, str]]) -> list[DeliveryView]:
    attempts: dict[int, list[WebhookAttempt]] = defaultdict(list)
    if rows:
        for a in session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_([d.id for d, _, _ in rows]))
            .order_by(WebhookAttempt.id)
        ):
            attempts[a.delivery_id].append(a)
    return [DeliveryView(d, public_id, type_, attempts[d.id]) for d, public_id, type_ in rows]


def _with_event() -> Any:
    return select(WebhookDelivery, WebhookEvent.public_id, WebhookEvent.type).join(
        WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id
    )


def list_deliveries(
    session: Session,
    endpoint: WebhookEndpoint,
    *,
    state: DeliveryState | None,
    event_type: str | None,
    before_id: int | None,
    limit: int,
) -> list[DeliveryView]:
    """The endpoint's deliveries, newest first, with their attempts."""
    stmt = (
        _with_event()
        .where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    if state is not None:
        stmt = stmt.where(WebhookDelivery.state == state)
    if event_type is not None:
        stmt = stmt.where(WebhookEvent.type == event_type)
    if before_id is not None:
        stmt = stmt.where(WebhookDelivery.id < before_id)
    return _views(session, [tuple(r) for r in session.execute(stmt)])


def delivery_view(session: Session, delivery_id: int) -> DeliveryView:
    row = session.execute(_with_event().where(WebhookDelivery.id == delivery_id)).one()
    return _views(session, [tuple(row)])[0]


# --- changes -------------------------------------------------------------------------------------------


def create_endpoint(
    session: Session, settings: Settings, actor: Actor, bank_id: int, data: EndpointCreate
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (to show once)."""
    url = str(data.url)
    _check_url(settings, url)
    count = session.scalar(
        select(func.count()).select_from(WebhookEndpoint).where(WebhookEndpoint.bank_id == bank_id)
    )
    if (count or 0) >= settings.webhook_max_endpoints_per_bank:
        raise Conflict(
            f"A bank may have at most {settings.webhook_max_endpoints_per_bank} webhook endpoints",
            code="webhook_endpoint_limit",
        )
    _url_taken(session, bank_id, url)
    endpoint = WebhookEndpoint(
        bank_id=bank_id,
        url=url,
        description=data.description,
        event_types=[str(t) for t in data.event_types] if data.event_types is not None else None,
        enabled=data.enabled,
        secret_salt=signing.new_salt(),
    )
    if not data.enabled:
        endpoint.disabled_reason = "created disabled"
        endpoint.disabled_at = utcnow()
    session.add(endpoint)
    session.flush()
    record(session, actor, "webhook_endpoint.create", "webhook_endpoint", endpoint.id, after=_snap(endpoint))
    return endpoint, signing.secret_for(settings, endpoint.secret_salt)


def _snap(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return snapshot(endpoint, _FIELDS)


def update_endpoint(
    session: Session, settings: Settings, actor: Actor, endpoint: WebhookEndpoint, data: EndpointUpdate
) -> WebhookEndpoint:
    given = data.model_fields_set
    for required in ("url", "enabled"):
        if required in given and getattr(data, required) is None:
            raise InvalidInput(
                f"{required} cannot be null",
                code="validation_error",
                details=[{"field": required, "message": "cannot be null"}],
            )
    before = _snap(endpoint)
    if data.url is not None:
        url = str(data.url)
        _check_url(settings, url)
        _url_taken(session, endpoint.bank_id, url, but=endpoint.id)
        endpoint.url = url
    if "description" in given:
        endpoint.description = data.description
    if "event_types" in given:
        types = data.event_types
        endpoint.event_types = [str(t) for t in types] if types is not None else None
    if data.enabled is True and not endpoint.enabled:
        _enable(endpoint)
    elif data.enabled is False and endpoint.enabled:
        endpoint.enabled = False
        endpoint.disabled_reason = "disabled by the bank"
        endpoint.disabled_at = utcnow()
    session.flush()
    record(
        session,
        actor,
        "webhook_endpoint.update",
        "webhook_endpoint",
        endpoint.id,
        before=before,
        after=_snap(endpoint),
    )
    return endpoint


def delete_endpoint(session: Session, actor: Actor, endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint with its deliveries and their attempts (pending ones are never sent)."""
    record(session, actor, "webhook_endpoint.delete", "webhook_endpoint", endpoint.id, before=_snap(endpoint))
    session.delete(endpoint)
    session.flush()


def rotate_secret(
    session: Session, settings: Settings, actor: Actor, endpoint: WebhookEndpoint
) -> tuple[WebhookEndpoint, str]:
    """A new signing secret (shown once). The current one keeps signing beside it for
    `webhook_secret_overlap_hours`; one rotated before that replaces an older previous secret."""
    endpoint.previous_secret_salt = endpoint.secret_salt
    endpoint.previous_secret_expires_at = utcnow() + timedelta(hours=settings.webhook_secret_overlap_hours)
    endpoint.secret_salt = signing.new_salt()
    session.flush()
    record(
        session,
        actor,
        "webhook_endpoint.rotate_secret",
        "webhook_endpoint",
        endpoint.id,
        after={"previous_secret_expires_at": endpoint.previous_secret_expires_at},
    )
    return endpoint, signing.secret_for(settings, endpoint.secret_salt)


def _require_enabled(endpoint: WebhookEndpoint, action: str) -> None:
    if not endpoint.enabled:
        raise Conflict(
            f"The endpoint is disabled ({endpoint.disabled_reason}); enable it before you {action}",
            code="webhook_endpoint_disabled",
        )


def send_test(session: Session, actor: Actor, endpoint: WebhookEndpoint) -> DeliveryView:
    """Queue a `ping` event to this endpoint only (whatever its event types)."""
    _require_enabled(endpoint, "test it")
    data = {"endpoint_id": endpoint.id, "message": "a test event from loanfund"}
    ping = outbox.Outgoing(endpoint.bank_id, outbox.PING, data)
    [delivery_id] = outbox.queue(session, [ping], endpoint_id=endpoint.id)
    record(
        session,
        actor,
        "webhook_endpoint.test",
        "webhook_endpoint",
        endpoint.id,
        after={"delivery_id": delivery_id},
    )
    return delivery_view(session, delivery_id)


def retry_delivery(
    session: Session, actor: Actor, principal: Principal, delivery_id: int, endpoint_id: int | None = None
) -> DeliveryView:
    """Send a delivery again now, with the same `webhook-id`: a failed or delivered one is queued again
    with a fresh retry schedule; a pending one becomes due at once."""
    stmt = (
        select(WebhookDelivery)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id == delivery_id)
        .with_for_update(of=WebhookDelivery)
    )
    if principal.is_bank:
        stmt = stmt.where(WebhookEndpoint.bank_id == principal.bank_id)
    if endpoint_id is not None:
        stmt = stmt.where(WebhookDelivery.endpoint_id == endpoint_id)
    delivery = session.scalar(stmt)
    if delivery is None:
        raise NotFound("No such delivery", code="webhook_delivery_not_found")
    endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
    assert endpoint is not None
    _require_enabled(endpoint, "retry its deliveries")
    before = {"state": delivery.state, "tries": delivery.tries}
    delivery.state = DeliveryState.pending
    delivery.tries = 0
    delivery.claim_token = None
    delivery.next_attempt_at = utcnow()
    session.flush()
    outbox.notify(session)
    record(
        session,
        actor,
        "webhook_delivery.retry",
        "webhook_delivery",
        delivery.id,
        before=before,
        after={"state": delivery.state, "tries": 0},
    )
    return delivery_view(session, delivery.id)
