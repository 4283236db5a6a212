from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Response, status

from loanfund.core.auth import AnyCaller, BankCaller, SettingsDep
from loanfund.core.db import DbSession
from loanfund.core.errors import responses
from loanfund.core.idempotency import IdempotencyDep
from loanfund.core.pagination import Page, Pagination
from loanfund.core.params import IdPath, id_query
from loanfund.webhooks import service
from loanfund.webhooks.models import DeliveryState
from loanfund.webhooks.outbox import EventType
from loanfund.webhooks.schemas import (
    DeliveryRead,
    EndpointCreate,
    EndpointRead,
    EndpointUpdate,
    EndpointWithSecret,
)
from loanfund.webhooks.service import DeliveryView

router = APIRouter(prefix="/api/v1/webhooks")
F = TypeVar("F", bound=Callable[..., Any])
_READ = responses(401, 403, 404, 422, 503)
_WRITE = responses(401, 403, 404, 409, 422, 503)


def _secret_shown(endpoint: EndpointRead, secret: str) -> EndpointWithSecret:
    return EndpointWithSecret(**endpoint.model_dump(), secret=secret)


def _delivery(view: DeliveryView) -> DeliveryRead:
    return DeliveryRead.of(view.delivery, view.event_id, view.event_type, view.attempts)


@router.post(
    "/endpoints",
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 403, 409, 422, 503),
    tags=["bank"],
    summary="Register a webhook endpoint; the answer shows its signing secret once",
)
def create_endpoint(
    body: EndpointCreate, session: DbSession, settings: SettingsDep, caller: BankCaller
) -> EndpointWithSecret:
    assert caller.bank_id is not None
    endpoint, secret = service.create_endpoint(session, settings, caller.actor, caller.bank_id, body)
    return _secret_shown(EndpointRead.of(endpoint), secret)


@router.get(
    "/endpoints",
    responses=responses(401, 403, 422, 503),
    tags=["bank", "bureau"],
    summary="List webhook endpoints (a bank sees its own; bureau staff all)",
)
def list_endpoints(
    session: DbSession,
    caller: AnyCaller,
    page: Pagination,
    bank_id: Annotated[int | None, id_query("Only this bank's endpoints")] = None,
) -> Page[EndpointRead]:
    rows = service.list_readable(session, caller, bank_id=bank_id, after_id=page.after_id, limit=page.fetch)
    return page.page(rows, EndpointRead.of, lambda e: e.id)


@router.get(
    "/endpoints/{endpoint_id}",
    responses=_READ,
    tags=["bank", "bureau"],
    summary="One webhook endpoint",
)
def read_endpoint(endpoint_id: IdPath, session: DbSession, caller: AnyCaller) -> EndpointRead:
    return EndpointRead.of(service.get_readable(session, caller, endpoint_id))


@router.patch(
    "/endpoints/{endpoint_id}",
    response_model=EndpointRead,
    responses=_WRITE,
    tags=["bank"],
    summary="Change the URL, description or event types; enable (after a 410 or failures) or pause",
)
def update_endpoint(
    endpoint_id: IdPath,
    body: EndpointUpdate,
    session: DbSession,
    settings: SettingsDep,
    caller: BankCaller,
    idem: IdempotencyDep,
) -> Response:
    def produce() -> EndpointRead:
        endpoint = service.get_readable(session, caller, endpoint_id, lock=True)
        return EndpointRead.of(service.update_endpoint(session, settings, caller.actor, endpoint, body))

    # a change is what was sent: an absent field and an explicit null are different requests
    return idem.run(body.model_dump(mode="json", exclude_unset=True), 200, produce)


@router.delete(
    "/endpoints/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=_READ,
    tags=["bank"],
    summary="Delete a webhook endpoint and its delivery log",
)
def delete_endpoint(endpoint_id: IdPath, session: DbSession, caller: BankCaller) -> Response:
    service.delete_endpoint(
        session, caller.actor, service.get_readable(session, caller, endpoint_id, lock=True)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/endpoints/{endpoint_id}/rotate-secret",
    responses=_READ,
    tags=["bank"],
    summary="A new signing secret, shown once; the old one also signs during the overlap (a setting)",
)
def rotate_secret(
    endpoint_id: IdPath, session: DbSession, settings: SettingsDep, caller: BankCaller
) -> EndpointWithSecret:
    endpoint = service.get_readable(session, caller, endpoint_id, lock=True)
    endpoint, secret = service.rotate_secret(session, settings, caller.actor, endpoint)
    return _secret_shown(EndpointRead.of(endpoint), secret)


@router.post(
    "/endpoints/{endpoint_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryRead,
    responses=_WRITE,
    tags=["bank"],
    summary="Queue a `ping` event to this endpoint; follow it in the delivery log",
)
def test_endpoint(
    endpoint_id: IdPath, session: DbSession, caller: BankCaller, idem: IdempotencyDep
) -> Response:
    def produce() -> DeliveryRead:
        endpoint = service.get_readable(session, caller, endpoint_id)
        return _delivery(service.send_test(session, caller.actor, endpoint))

    return idem.run(None, status.HTTP_202_ACCEPTED, produce)


@router.get(
    "/endpoints/{endpoint_id}/deliveries",
    responses=_READ,
    tags=["bank", "bureau"],
    summary="The endpoint's delivery log, newest first: each event with every attempt",
)
def list_deliveries(
    endpoint_id: IdPath,
    session: DbSession,
    caller: AnyCaller,
    page: Pagination,
    state: Annotated[DeliveryState | None, Query()] = None,
    event_type: Annotated[EventType | None, Query()] = None,
) -> Page[DeliveryRead]:
    endpoint = service.get_readable(session, caller, endpoint_id)
    views = service.list_deliveries(
        session,
        endpoint,
        state=state,
        event_type=event_type.value if event_type is not None else None,
        before_id=page.after_id,
        limit=page.fetch,
    )
    return page.page(views, _delivery, lambda v: v.delivery.id)


def _retry_route(path: str) -> Callable[[F], F]:
    return router.post(
        path,
        status_code=status.HTTP_202_ACCEPTED,
        response_model=DeliveryRead,
        responses=_WRITE,
        tags=["bank"],
        summary="Send a delivery again now, with the same webhook-id (a fresh retry schedule)",
    )


# One action at three addresses: under the endpoints, under the webhooks, and under its endpoint.
@_retry_route("/endpoints/deliveries/{delivery_id}/retry")
@_retry_route("/deliveries/{delivery_id}/retry")
def retry_delivery(
    delivery_id: IdPath, session: DbSession, caller: BankCaller, idem: IdempotencyDep
) -> Response:
    return idem.run(
        None,
        status.HTTP_202_ACCEPTED,
        lambda: _delivery(service.retry_delivery(session, caller.actor, caller, delivery_id)),
    )


@_retry_route("/endpoints/{endpoint_id}/deliveries/{delivery_id}/retry")
def retry_endpoint_delivery(
    endpoint_id: IdPath, delivery_id: IdPath, session: DbSession, caller: BankCaller, idem: IdempotencyDep
) -> Response:
    return idem.run(
        None,
        status.HTTP_202_ACCEPTED,
        lambda: _delivery(service.retry_delivery(session, caller.actor, caller, delivery_id, endpoint_id)),
    )
