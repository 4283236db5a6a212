from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, AnyHttpUrl, BaseModel, ConfigDict, Field

from loanfund.webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from loanfund.webhooks.outbox import EventType

MAX_URL = 2048


def _url_text(url: AnyHttpUrl) -> str:
    text = str(url)
    if len(text) > MAX_URL:
        raise ValueError(f"the URL is longer than {MAX_URL} characters")
    return text


EndpointUrl = Annotated[
    AnyHttpUrl,
    Field(max_length=MAX_URL, examples=["https://loans.bank.example.cn/loanfund/webhooks"]),
    AfterValidator(_url_text),
]
Description = Annotated[str, Field(max_length=200)]
EventTypes = Annotated[
    list[EventType],
    Field(
        min_length=1,
        max_length=len(EventType),
        description="The event types sent to this endpoint; null: all of them, present and future",
    ),
    AfterValidator(lambda types: list(dict.fromkeys(types))),
]


class EndpointCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.bank.example.cn/loanfund",
                    "description": "credit operations",
                    "event_types": ["claim.paid", "loan.state_changed"],
                    "enabled": True,
                }
            ]
        },
    )

    url: EndpointUrl
    description: Description | None = None
    event_types: EventTypes | None = None
    enabled: Annotated[bool, Field(strict=True)] = True


class EndpointUpdate(BaseModel):
    """Only the fields given change; `event_types: null` subscribes to every type."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"event_types": ["claim.approved", "claim.paid"], "enabled": True}]},
    )

    url: EndpointUrl | None = None
    description: Description | None = None
    event_types: EventTypes | None = None
    enabled: Annotated[bool, Field(strict=True)] | None = Field(
        default=None, description="true enables again (after a 410 or failures), false pauses deliveries"
    )


class EndpointRead(BaseModel):
    id: int
    bank_id: int
    url: str
    description: str | None
    event_types: list[EventType] | None = Field(description="null: every event type")
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None = Field(description="First failed attempt since the last success")
    previous_secret_expires_at: datetime | None = Field(
        description="After a rotation: until when the previous secret also signs"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, e: WebhookEndpoint) -> EndpointRead:
        return cls(
            id=e.id,
            bank_id=e.bank_id,
            url=e.url,
            description=e.description,
            event_types=[EventType(t) for t in e.event_types] if e.event_types is not None else None,
            enabled=e.enabled,
            disabled_reason=e.disabled_reason,
            disabled_at=e.disabled_at,
            failing_since=e.failing_since,
            previous_secret_expires_at=e.previous_secret_expires_at,
            created_at=e.created_at,
            updated_at=e.updated_at,
        )


class EndpointWithSecret(EndpointRead):
    secret: str = Field(
        description="Shown once: the `whsec_` signing secret to verify the `webhook-signature` header"
    )


class AttemptRead(BaseModel):
    attempted_at: datetime
    duration_ms: int
    status_code: int | None = Field(description="The receiver's status; null when no answer came")
    error: str | None = Field(description="Why no answer came: timeout, refused address, connection error")
    response_excerpt: str | None = Field(description="The start of the receiver's answer")
    note: str | None = Field(description="What the attempt led to, e.g. the endpoint disabled")

    @classmethod
    def of(cls, a: WebhookAttempt) -> AttemptRead:
        return cls(
            attempted_at=a.attempted_at,
            duration_ms=a.duration_ms,
            status_code=a.status_code,
            error=a.error,
            response_excerpt=a.response_excerpt,
            note=a.note,
        )


class DeliveryRead(BaseModel):
    id: int
    endpoint_id: int
    event_id: str = Field(description="The event's id: the `webhook-id` header and `id` in the body")
    event_type: str
    state: DeliveryState
    attempt_count: int
    next_attempt_at: datetime | None = Field(description="While pending: the earliest next attempt")
    delivered_at: datetime | None
    created_at: datetime
    attempts: list[AttemptRead] = Field(description="Every attempt, oldest first")

    @classmethod
    def of(
        cls, d: WebhookDelivery, event_id: str, event_type: str, attempts: list[WebhookAttempt]
    ) -> DeliveryRead:
        return cls(
            id=d.id,
            endpoint_id=d.endpoint_id,
            event_id=event_id,
            event_type=event_type,
            state=d.state,
            attempt_count=d.attempts,
            next_attempt_at=d.next_attempt_at if d.state is DeliveryState.pending else None,
            delivered_at=d.delivered_at,
            created_at=d.created_at,
            attempts=[AttemptRead.of(a) for a in attempts],
        )
