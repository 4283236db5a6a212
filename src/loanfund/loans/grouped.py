"""Single repayments and delinquency reports from concurrent requests, written together.

Banks post events one request at a time as well as in batches. Under load, the single requests that are
in flight at once are written in one transaction (`core.group_commit`): the loans locked in one query,
the checks made in memory with the rules of `service.post_event`, then each kind of row written once for
the whole group — what `loans.batch` does for a batch, with every request keeping its own answer, audit
record (its actor and request id) and idempotency record.

Only the plain case is done here: a new `Idempotency-Key` (or none), an open loan of the caller's bank,
an event dated on or after the loan's last one, not in the future or a closed month, with an unused
reference. Anything else — a replay, a key in use, a backdated event that replays the loan, any refusal
— is answered None and takes the ordinary path (`service.post_event` in a request of its own), which
gives the answer and error codes of the API. Disbursements always take the ordinary path: each passes the
fund's coverage gate under the lock on the fund's cash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from loanfund.audit.service import Actor, Attributed, Entry, record_each
from loanfund.core import bulk, idempotency
from loanfund.core.config import Settings
from loanfund.core.db import utcnow
from loanfund.core.errors import LoanfundError
from loanfund.core.money import yuan_str
from loanfund.enterprises.models import ENTERPRISES
from loanfund.fund import breakers
from loanfund.loans import service
from loanfund.loans.models import DRAFT_COLUMNS, EVENTS, LOANS, LoanDraft
from loanfund.loans.schemas import EventRead, EventResult, LoanRead
from loanfund.loans.state import Event, EventKind
from loanfund.portfolio import service as portfolio
from loanfund.status_reports.repository import closed_through_many

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


@dataclass
class _Stored:
    draft: LoanDraft
    credit_code: str
    created_at: datetime


@dataclass
class _Accepted:
    index: int
    item: SingleEvent
    loan: _Stored
    before: dict[str, object]
    after: dict[str, object]
    shown: LoanRead


class _NeedsReplay(Exception):
    """A backdated event: the loan's history is replayed, which the ordinary path does."""


def _no_history() -> list[Event]:
    raise _NeedsReplay


def post_many(settings: Settings, session: Session, items: Sequence[SingleEvent]) -> list[str | None]:
    """Write the plain ones of `items` (see the module's docstring) in the session's transaction; the
    response body of each one written, None for each left to the ordinary path. The caller commits."""
    eligible = _eligible(session, items)
    loans = _locked_loans(session, {items[i].loan_id for i in eligible})
    lk = service.Lookups(session, settings)
    lk.closed.update(closed_through_many(session, {items[i].bank_id for i in eligible}))
    used = _used_refs(session, [items[i] for i in eligible])
    now = utcnow()
    accepted: list[_Accepted] = []
    changes = portfolio.Changes()
    breaker_actors: dict[int, Actor] = {}
    for i in sorted(eligible):
        item = items[i]
        loan = loans.get(item.loan_id)
        if loan is None or loan.draft.bank_id != item.bank_id or (item.bank_id, item.bank_event_ref) in used:
            continue
        draft = loan.draft
        try:
            service.check_event_date(lk, item.bank_id, item.event)
            snap, deltas = service.plan_event(draft, item.event, settings.npl_days, _no_history)
        except (LoanfundError, _NeedsReplay):
            continue
        used.add((item.bank_id, item.bank_event_ref))
        before = service.loan_view(draft)
        draft.set_snapshot(snap)
        changes.add(portfolio.key_of(draft), deltas)
        if portfolio.moves_npl_ratio(deltas):
            breaker_actors.setdefault(item.bank_id, item.actor)
        shown = LoanRead.of_fields(
            draft,
            loan.credit_code,
            application_id=draft.application_id,
            created_at=loan.created_at,
            updated_at=now,
        )
        accepted.append(_Accepted(i, item, loan, before, service.loan_view(draft), shown))
    results: list[str | None] = [None] * len(items)
    if not accepted:
        return results
    _write(session, settings, accepted, changes, now, results)
    for bank_id, actor in sorted(breaker_actors.items()):
        breakers.evaluate_bank(session, settings, actor, bank_id)
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


def _locked_loans(session: Session, loan_ids: set[int]) -> dict[int, _Stored]:
    """The loans as drafts with what a response shows, locked in id order (as `loans.batch` does)."""
    if not loan_ids:
        return {}
    ents = ENTERPRISES
    stmt = (
        select(*(LOANS.c[c] for c in DRAFT_COLUMNS), ents.c.credit_code, LOANS.c.created_at)
        .join(ents, ents.c.id == LOANS.c.enterprise_id)
        .where(bulk.one_of(session, LOANS, "id", sorted(loan_ids)))
        .order_by(LOANS.c.id)
        .with_for_update(of=LOANS)
    )
    n = len(DRAFT_COLUMNS)
    out: dict[int, _Stored] = {}
    for row in session.execute(stmt).all():
        draft = LoanDraft(*row[:n])
        assert draft.id is not None
        out[draft.id] = _Stored(draft, row[n], row[n + 1])
    return out


def _used_refs(session: Session, items: Sequence[SingleEvent]) -> set[tuple[int, str]]:
    rows = [{"bank_id": i.bank_id, "bank_event_ref": i.bank_event_ref} for i in items]
    keys = ("bank_id", "bank_event_ref")
    return {(b, r) for b, r in bulk.select_matching(session, EVENTS, keys, rows, keys)}


def _write(
    session: Session,
    settings: Settings,
    accepted: list[_Accepted],
    changes: portfolio.Changes,
    now: datetime,
    results: list[str | None],
) -> None:
    """The loans, events, audit records, aggregates (last: the rows concurrent writers share) and the
    idempotency records; each request's response body into `results`."""
    drafts = {a.loan.draft.id: a.loan.draft for a in accepted}
    bulk.update_rows(session, LOANS, [d.snapshot_row(updated_at=now) for d in drafts.values()])
    event_rows = [
        {
            **service.event_row(a.item.event, a.item.bank_event_ref),
            "loan_id": a.loan.draft.id,
            "bank_id": a.item.bank_id,
        }
        for a in accepted
    ]
    ids = bulk.insert_rows(
        session, EVENTS, event_rows, same={"source": "api", "created_at": now}, return_ids=True
    )
    audit: list[Attributed] = []
    stored: list[dict[str, Any]] = []
    for a, event_id, row in zip(accepted, ids, event_rows, strict=True):
        e = a.item.event
        shown = EventRead(
            id=event_id,
            kind=e.kind,
            bank_event_ref=a.item.bank_event_ref,
            date=e.event_date,
            principal=yuan_str(e.principal_fen),
            interest=yuan_str(e.interest_fen),
            days_past_due=row["days_past_due"],
            source="api",
            created_at=now,
        )
        body = idempotency.response_text(EventResult(event=shown, loan=a.shown))
        results[a.index] = body
        after = {**a.after, "event_id": event_id, "bank_event_ref": a.item.bank_event_ref}
        entry = Entry(f"loan.{e.kind.value}", "loan", a.item.loan_id, before=a.before, after=after)
        audit.append(Attributed(a.item.actor, a.item.request_id, entry))
        if a.item.key is not None:
            assert a.item.fingerprint is not None
            stored.append(
                idempotency.record_row(
                    settings, a.item.bank_id, a.item.key, a.item.fingerprint, STATUS, body, now
                )
            )
    record_each(session, audit)
    changes.write(session)
    bulk.insert_rows(session, _KEYS, stored)
