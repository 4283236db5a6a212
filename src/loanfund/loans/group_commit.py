"""Group commit of single repayments and delinquency reports: concurrent requests written together.

Banks post events one request at a time as well as in batches. Under load, the single requests that are
in flight at once are written in one transaction (`core.group_commit`): each request is a submission of
one item to the one write path (`loans.writes.run`), so the group is planned and applied like a batch —
the loans locked in one query, each kind of row written once — while every request keeps its own answer,
audit record (its actor and request id) and idempotency record.

An item the path refuses, and any request that is not plain — a replay, a key in use by another
request, the same key twice in a group — is answered None and takes the ordinary path (the same write
path, in a request of its own), which gives the answer and error codes of the API. Disbursements always
take the ordinary path: each passes the fund's coverage gate under the lock on the fund's cash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session

from loanfund.audit.service import Actor
from loanfund.core import bulk, idempotency
from loanfund.core.config import Settings
from loanfund.loans import writes
from loanfund.loans.schemas import EventResult
from loanfund.loans.state import Event, EventKind

_KEYS: Table = idempotency.IdempotencyRecord.__table__  # type: ignore[assignment]
STATUS = 201


@dataclass(frozen=True)
class SingleEvent:
    """One request's event: who posted it, on which loan, and its idempotency key and fingerprint."""

    bank_id: int
    actor: Actor
    request_id: str | None
    loan_id: int
    event: Event
    bank_event_ref: str
    key: str | None = None
    fingerprint: str | None = None

    def __post_init__(self) -> None:
        if self.event.kind is EventKind.disbursement:
            raise ValueError("disbursements take the ordinary path (the coverage gate)")


def post_many(settings: Settings, session: Session, items: Sequence[SingleEvent]) -> list[str | None]:
    """Write the plain ones of `items` in the session's transaction; the response body of each one
    written, None for each left to the ordinary path. The caller commits."""
    eligible = sorted(_eligible(session, items))
    results: list[str | None] = [None] * len(items)
    if not eligible:
        return results
    submissions = [
        writes.Submission(
            items[i].bank_id,
            items[i].actor,
            [writes.EventIn(items[i].loan_id, items[i].event, items[i].bank_event_ref)],
            request_id=items[i].request_id,
        )
        for i in eligible
    ]
    stored: list[dict[str, Any]] = []
    for i, outcome in zip(eligible, writes.run(session, settings, submissions), strict=True):
        if not outcome.ok:
            continue
        item = items[i]
        body = idempotency.response_text(EventResult.of_done(outcome.done[0]))
        results[i] = body
        if item.key is not None:
            assert item.fingerprint is not None
            stored.append(
                idempotency.record_row(
                    settings, item.bank_id, item.key, item.fingerprint, STATUS, body, outcome.done[0].at
                )
            )
    bulk.insert_rows(session, _KEYS, stored)
    return results


def _eligible(session: Session, items: Sequence[SingleEvent]) -> set[int]:
    """The items whose key (if any) is new, used once in the group, and not in use by another request."""
    keyed: dict[tuple[int, str], int] = {}
    eligible: set[int] = set()
    for i, item in enumerate(items):
        if item.key is None:
            eligible.add(i)
        elif (item.bank_id, item.key) not in keyed:  # the same key twice: the second replays later
            keyed[(item.bank_id, item.key)] = i
    pairs = list(keyed)
    locked = idempotency.try_lock_many(session, pairs)
    stored = idempotency.stored_keys(session, [p for p, got in zip(pairs, locked, strict=True) if got])
    for pair, got in zip(pairs, locked, strict=True):
        if got and pair not in stored:
            eligible.add(keyed[pair])
    return eligible
