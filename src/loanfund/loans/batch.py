"""Bulk submission: up to `batch_max_items` contracts and events, all or nothing.

Items are applied in order (an event may refer to a contract earlier in the same batch). Each item is
fully checked before it changes anything, so a refused item leaves no trace; every refused item is
collected, and if there is any, the whole batch is rolled back and answered 422 with the list.

The rules are those of `service.register_contract` and `service.post_event` (the same check functions);
what differs is how a batch of thousands talks to the database — a few statements per part of a batch
instead of several per item:

* before the items: one query for the enterprises named, one that loads *and locks* (in id order) every
  loan the batch refers to, one for the event references already used, (for a bank with a lending
  quota) one for what counts against it, and one per table for the ids of the new rows;
* the items are checked and applied in memory, on plain `LoanDraft` copies of the loans — events
  accepted so far are kept per loan (for a backdated event's replay) and aggregate deltas are summed per
  row — a part of `_PART` items at a time. Each part, once worked out, is handed to a `bulk.Writer`:
  its new loans, changed loans, events and audit records (one per item, as for single requests) are
  sent in pipeline mode (`unnest` arrays), so PostgreSQL writes them while the next part is worked out
  here. After the first refused item nothing more is handed over;
* after the items, if all are valid: each aggregate row once (`portfolio.Changes`), queued last on the
  same writer.

A contract from an application is written at once (marking the application lent needs the loan's id),
which changes nothing about what the batch does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from loanfund.applications import service as application_service
from loanfund.audit.service import Actor, Entry, record_many
from loanfund.banks.models import Bank
from loanfund.core import bulk
from loanfund.core.config import Settings
from loanfund.core.db import utcnow
from loanfund.core.errors import InvalidInput, LoanfundError
from loanfund.core.money import to_fen
from loanfund.loans import repository, service
from loanfund.loans.models import EVENTS, LOANS, LoanDraft
from loanfund.loans.schemas import (
    BatchContract,
    BatchDelinquency,
    BatchDisbursement,
    BatchItem,
    BatchRepayment,
)
from loanfund.loans.state import Event, EventKind
from loanfund.portfolio import service as portfolio


@dataclass
class _Done:
    """An accepted item: its loan; for a contract what the audit record shows of it, for an event the
    row and the loan before and after it."""

    loan: LoanDraft
    event: dict[str, Any] | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


# items worked out between two handovers to the writer: small enough that the database starts early
# and the last part's writes are short, large enough that each statement still carries many rows
_PART = 100


def submit(
    session: Session, settings: Settings, actor: Actor, bank: Bank, items: Sequence[BatchItem]
) -> tuple[int, int, list[int]]:
    if len(items) > settings.batch_max_items:
        raise InvalidInput(
            f"A batch holds at most {settings.batch_max_items} items; this one has {len(items)}",
            code="batch_too_large",
            details=[{"field": "items", "message": f"at most {settings.batch_max_items}"}],
        )
    savepoint = session.begin_nested()
    batch = _Batch(session, settings, actor, bank, items)
    try:
        with bulk.Writer(session) as writer:
            done = batch.run(writer)
            # the aggregates last: they are the rows concurrent batches share
            batch.changes.write(session, writer)
    except InvalidInput:
        savepoint.rollback()
        raise
    savepoint.commit()
    service.evaluate_breakers(session, settings, actor, batch.lk)
    contracts = sum(1 for d in done if d.event is None)
    ids = [d.loan.id for d in done]
    assert all(i is not None for i in ids)
    return contracts, len(done) - contracts, [i for i in ids if i is not None]


class _Batch:
    def __init__(
        self, session: Session, settings: Settings, actor: Actor, bank: Bank, items: Sequence[BatchItem]
    ) -> None:
        self.session = session
        self.settings = settings
        self.actor = actor
        self.bank = bank
        self.items = items
        self.lk = service.Lookups(session, settings)
        self.quota = bank.lending_quota_fen
        # what the batch has done so far, in memory
        self.loans: dict[str, LoanDraft] = {}  # bank_loan_ref → loan (stored, or new in this batch)
        self.new_refs: dict[str, int] = {}  # bank_loan_ref → index of the contract that made it
        self.used_event_refs: dict[str, tuple[int, int]] = {}  # stored: → (event id, loan id)
        self.new_event_refs: dict[str, int] = {}  # → index of the item that posted it
        self.pending: dict[int, list[Event]] = {}  # id(loan) → events accepted in this batch
        self.changes = portfolio.Changes()  # aggregate deltas, summed per row
        self.committed = 0  # what counts against the bank's lending quota, as of the item at hand
        self.event_ids: set[int] = set()  # of the events written so far
        self.now = utcnow()

    def run(self, writer: bulk.Writer) -> list[_Done]:
        self._prefetch()
        contracts = sum(1 for i in self.items if isinstance(i, BatchContract))
        writer.reserve_ids(LOANS, contracts)
        writer.reserve_ids(EVENTS, len(self.items) - contracts)
        errors: list[dict[str, Any]] = []
        done: list[_Done] = []
        written = 0
        for index, item in enumerate(self.items):
            try:
                if isinstance(item, BatchContract):
                    done.append(self._contract(index, item))
                else:
                    done.append(self._event(index, item))
            except LoanfundError as exc:
                errors.append(
                    {"index": index, "code": exc.code, "message": exc.message, "details": exc.details}
                )
            if not errors and len(done) - written >= _PART:
                self._write(writer, done[written:])
                written = len(done)
        if errors:
            raise InvalidInput(
                f"{len(errors)} of {len(self.items)} items are invalid; nothing was written",
                code="batch_invalid",
                details=errors,
            )
        self._write(writer, done[written:])
        return done

    def _prefetch(self) -> None:
        s, bank_id = self.session, self.bank.id
        self.lk.prefetch_enterprises({i.credit_code for i in self.items if isinstance(i, BatchContract)})
        self.loans = repository.drafts_by_refs_locked(s, bank_id, {i.bank_loan_ref for i in self.items})
        event_refs = {i.bank_event_ref for i in self.items if not isinstance(i, BatchContract)}
        self.used_event_refs = repository.events_by_refs(s, bank_id, event_refs)
        if self.quota is not None:
            self.committed = service.committed_fen(s, bank_id)

    def _contract(self, index: int, item: BatchContract) -> _Done:
        ent, amount_fen = service.check_contract(
            self.lk,
            self.bank,
            credit_code=item.credit_code,
            amount=item.amount,
            annual_rate_pct=item.annual_rate_pct,
            start_date=item.start_date,
            maturity_date=item.maturity_date,
        )
        application = None
        if item.application_no is not None:
            application = service.approved_application(
                self.session,
                self.bank,
                item.application_no,
                ent,
                amount_fen,
                item.annual_rate_pct,
                item.start_date,
                item.maturity_date,
            )
        ref = item.bank_loan_ref
        if ref in self.loans:
            taken = self.loans[ref]
            raise service.ref_taken(
                ref, {"loan_id": taken.id} if ref not in self.new_refs else {"index": self.new_refs[ref]}
            )
        if self.quota is not None and self.committed + amount_fen > self.quota:
            raise service.quota_exceeded()
        # a contract is not yet covered principal: it must fit under the cap, and is counted when disbursed
        self.lk.coverage.admit(self.bank, amount_fen, item.start_date, counts=False)
        loan = LoanDraft(
            id=None,
            **service.new_loan_values(
                self.bank,
                ent,
                application,
                bank_loan_ref=ref,
                amount_fen=amount_fen,
                annual_rate_pct=item.annual_rate_pct,
                start_date=item.start_date,
                maturity_date=item.maturity_date,
            ),
        )
        if application is not None:  # marking the application lent needs the loan's id now
            (loan.id,) = bulk.insert_rows(self.session, LOANS, [loan.row()], return_ids=True)
            application_service.mark_lent(self.session, self.actor, application, loan.id)
        self.committed += service.quota_part(loan)
        self.loans[ref] = loan
        self.new_refs[ref] = index
        return _Done(loan, after=service.contract_audit(loan, item.credit_code))

    def _event(self, index: int, item: BatchDisbursement | BatchRepayment | BatchDelinquency) -> _Done:
        loan = self.loans.get(item.bank_loan_ref)
        if loan is None:
            raise service.loan_unknown(item.bank_loan_ref)
        event = _as_event(item)
        service.check_event_date(self.lk, self.bank.id, event)
        ref = item.bank_event_ref
        if ref in self.used_event_refs:
            event_id, loan_id = self.used_event_refs[ref]
            raise service.event_ref_taken(ref, {"event_id": event_id, "loan_id": loan_id})
        if ref in self.new_event_refs:
            raise service.event_ref_taken(ref, {"index": self.new_event_refs[ref]})
        snap, deltas = service.plan_event(loan, event, self.settings.npl_days, lambda: self._history(loan))
        if event.kind is EventKind.disbursement:
            self.lk.coverage.admit(self.bank, event.principal_fen, event.event_date)
        if portfolio.moves_npl_ratio(deltas):
            self.lk.touched_banks.add(loan.bank_id)
        before = service.loan_view(loan)
        part = service.quota_part(loan)
        loan.set_snapshot(snap)
        self.committed += service.quota_part(loan) - part
        self.pending.setdefault(id(loan), []).append(event)
        self.new_event_refs[ref] = index
        self.changes.add(portfolio.key_of(loan), deltas)
        if event.kind is EventKind.disbursement:
            self.changes.borrowed(loan.enterprise_id, loan.bank_id, event.event_date)
        return _Done(
            loan,
            event=service.event_row(event, ref),
            before=before,
            after=service.loan_view(loan),
        )

    def _history(self, loan: LoanDraft) -> list[Event]:
        """The loan's events in posting order: those stored before this batch, then those accepted in
        it."""
        stored = (
            [] if loan.id is None else service.stored_events(self.session, loan.id, excluding=self.event_ids)
        )
        return stored + self.pending.get(id(loan), [])

    def _write(self, writer: bulk.Writer, part: list[_Done]) -> None:
        """Hand over what the `part` of the items did: new loans, changed loans, events, audit records."""
        new = [d.loan for d in part if d.event is None and d.loan.id is None]
        ids = writer.insert_rows(LOANS, [n.row() for n in new], return_ids=True)
        for loan, loan_id in zip(new, ids, strict=True):
            loan.id = loan_id
        events = []
        for d in part:
            if d.event is not None:
                d.event["loan_id"] = d.loan.id
                events.append(d.event)
        same = {"bank_id": self.bank.id, "source": "batch"}
        event_ids = iter(writer.insert_rows(EVENTS, events, same=same, return_ids=True))
        inserted = {id(n) for n in new}  # written as they are now: nothing to update
        changed = {id(d.loan): d.loan for d in part if d.event is not None and id(d.loan) not in inserted}
        writer.update_rows(LOANS, [loan.snapshot_row(updated_at=self.now) for loan in changed.values()])
        entries: list[Entry] = []
        for d in part:
            assert d.loan.id is not None
            if d.event is None:
                entries.append(Entry("loan.create", "loan", d.loan.id, after=d.after))
                continue
            kind: EventKind = d.event["kind"]
            event_id = next(event_ids)
            self.event_ids.add(event_id)
            after = {**(d.after or {}), "event_id": event_id, "bank_event_ref": d.event["bank_event_ref"]}
            entries.append(Entry(f"loan.{kind.value}", "loan", d.loan.id, before=d.before, after=after))
        record_many(self.session, self.actor, entries, writer=writer)


def _as_event(item: BatchDisbursement | BatchRepayment | BatchDelinquency) -> Event:
    if isinstance(item, BatchDisbursement):
        return Event(EventKind.disbursement, item.date, principal_fen=to_fen(item.amount))
    if isinstance(item, BatchRepayment):
        return Event(
            EventKind.repayment,
            item.date,
            principal_fen=to_fen(item.principal),
            interest_fen=to_fen(item.interest),
        )
    return Event(EventKind.delinquency, item.date, days_past_due=item.days_past_due)
