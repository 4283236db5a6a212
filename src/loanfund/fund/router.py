from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from loanfund.core.auth import BureauOfficer, BureauReader, SettingsDep
from loanfund.core.clock import business_today
from loanfund.core.dates import IsoDate
from loanfund.core.db import DbSession
from loanfund.core.errors import responses
from loanfund.core.idempotency import IdempotencyDep
from loanfund.core.money import to_fen
from loanfund.core.pagination import Page, Pagination
from loanfund.core.params import IdPath, id_query
from loanfund.fund import contributions, ledger, repository, service
from loanfund.fund.models import ContributionSource, TransactionKind
from loanfund.fund.schemas import (
    AccountRead,
    ContributionCreate,
    ContributionRead,
    PositionRead,
    ReconciliationRead,
    ReverseRequest,
    TransactionRead,
)

router = APIRouter(prefix="/api/v1/fund", tags=["bureau"])
_READ = responses(401, 403, 422, 503)
_WRITE = responses(401, 403, 404, 409, 422, 503)


@router.post(
    "/contributions",
    status_code=status.HTTP_201_CREATED,
    response_model=ContributionRead,
    responses=_WRITE,
    summary="Record a contribution from the city or district budget",
)
def create_contribution(
    body: ContributionCreate,
    session: DbSession,
    settings: SettingsDep,
    caller: BureauOfficer,
    idem: IdempotencyDep,
) -> Response:
    def produce() -> ContributionRead:
        contribution = contributions.record_contribution(
            session,
            caller.actor,
            source=body.source,
            amount_fen=to_fen(body.amount),
            value_date=body.value_date,
            budget_doc_no=body.budget_doc_no,
            memo=body.memo,
            today=business_today(settings),
        )
        return ContributionRead.of(contribution)

    return idem.run(body, status.HTTP_201_CREATED, produce)


@router.get("/contributions", responses=_READ, summary="Contributions, in the order recorded")
def list_contributions(
    session: DbSession,
    caller: BureauReader,
    page: Pagination,
    source: Annotated[ContributionSource | None, Query()] = None,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="Value date in this year")] = None,
) -> Page[ContributionRead]:
    rows = repository.list_contributions(
        session, source=source, year=year, after_id=page.after_id, limit=page.fetch
    )
    return page.page(rows, ContributionRead.of, lambda c: c.id)


@router.get(
    "/position",
    responses=_READ,
    summary="Fund size, balance, reserved and available, now or at a value date",
)
def position(
    session: DbSession,
    caller: BureauReader,
    as_of: Annotated[IsoDate | None, Query(description="Value date (inclusive); omit for now")] = None,
) -> PositionRead:
    return PositionRead.of(service.fund_position(session, as_of))


@router.get("/accounts", responses=_READ, summary="The chart of accounts with current balances")
def list_accounts(
    session: DbSession,
    caller: BureauReader,
    page: Pagination,
    category: Annotated[str | None, Query(max_length=32)] = None,
    bank_id: Annotated[int | None, id_query()] = None,
) -> Page[AccountRead]:
    rows = repository.list_accounts(
        session, category=category, bank_id=bank_id, after_id=page.after_id, limit=page.fetch
    )
    return page.page(rows, lambda r: AccountRead.of(*r), lambda r: r[0].id)


@router.get("/transactions", responses=_READ, summary="Ledger transactions with their entries, newest first")
def list_transactions(
    session: DbSession,
    caller: BureauReader,
    page: Pagination,
    kind: Annotated[TransactionKind | None, Query()] = None,
    reference_type: Annotated[str | None, Query(max_length=32)] = None,
    reference_id: Annotated[str | None, Query(max_length=64)] = None,
    value_from: Annotated[IsoDate | None, Query()] = None,
    value_to: Annotated[IsoDate | None, Query()] = None,
) -> Page[TransactionRead]:
    rows = repository.list_transactions(
        session,
        kind=kind,
        reference_type=reference_type,
        reference_id=reference_id,
        value_from=value_from,
        value_to=value_to,
        after_id=page.after_id,
        limit=page.fetch,
    )
    return page.page(rows, TransactionRead.of, lambda t: t.id)


@router.get(
    "/transactions/{transaction_id}",
    responses=responses(401, 403, 404, 422, 503),
    summary="One ledger transaction",
)
def read_transaction(transaction_id: IdPath, session: DbSession, caller: BureauReader) -> TransactionRead:
    return TransactionRead.of(ledger.load_transaction(session, transaction_id))


@router.post(
    "/transactions/{transaction_id}/reverse",
    status_code=status.HTTP_201_CREATED,
    response_model=TransactionRead,
    responses=_WRITE,
    summary="Correct a mistake by posting the mirror transaction (once; never of a reversal)",
)
def reverse_transaction(
    transaction_id: IdPath,
    body: ReverseRequest,
    session: DbSession,
    caller: BureauOfficer,
    idem: IdempotencyDep,
) -> Response:
    def produce() -> TransactionRead:
        reversal = service.reverse_transaction(
            session, caller.actor, transaction_id, body.reason, value_date=body.value_date
        )
        return TransactionRead.of(ledger.load_transaction(session, reversal.id))

    return idem.run(body, status.HTTP_201_CREATED, produce)


@router.get(
    "/reconciliation",
    responses=_READ,
    summary="Recompute every balance from the entries and compare with the running totals",
)
def reconciliation(session: DbSession, caller: BureauReader) -> ReconciliationRead:
    return ReconciliationRead.of(ledger.reconcile(session))
