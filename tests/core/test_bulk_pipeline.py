"""core.bulk.pipeline: statements queued while the caller goes on are written as the helpers write them
outside a pipeline, are seen by whatever uses the connection next, and fail the way they fail there."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from loanfund.banks.models import Bank, BankStatus
from loanfund.core import bulk

BANKS: Table = Bank.__table__  # type: ignore[assignment]
AUDIT: Table = AuditRecord.__table__  # type: ignore[assignment]


def _row(code: str) -> dict[str, object]:
    return {"code": code, "name": f"bank {code}", "fund_share": Decimal("0.8"), "status": BankStatus.active}


def test_queued_writes_are_seen_by_the_next_query(session: Session) -> None:
    with bulk.pipeline(session):
        bulk.reserve_ids(session, BANKS, 2)
        ids = bulk.insert_rows(session, BANKS, [_row("WR1"), _row("WR2")], return_ids=True)
        bulk.update_rows(session, BANKS, [{"id": ids[1], "name": "renamed", "status": BankStatus.suspended}])
        # an ORM query meanwhile waits for what was queued before it
        stored = {b.code: b for b in session.scalars(select(Bank).where(Bank.id.in_(ids)))}
        assert [stored["WR1"].id, stored["WR2"].id] == ids
        assert (stored["WR2"].name, stored["WR2"].status) == ("renamed", BankStatus.suspended)
        assert stored["WR1"].created_at is not None  # the column's Python-side default
        # and the pipeline goes on afterwards, for every helper
        more = bulk.insert_rows(session, BANKS, [_row("WR3")], return_ids=True)
        direct = bulk.insert_rows(session, BANKS, [_row("WR4")], return_ids=True)
        bulk.update_rows(session, BANKS, [{"id": more[0], "name": "third"}])
    names = dict(session.execute(select(Bank.code, Bank.name).where(Bank.code.like("WR%"))).all())
    assert names == {"WR1": "bank WR1", "WR2": "renamed", "WR3": "third", "WR4": "bank WR4"}
    assert len(set(ids + more + direct)) == 4


def test_ids_beyond_the_reservation_are_drawn_when_needed(session: Session) -> None:
    with bulk.pipeline(session):
        bulk.reserve_ids(session, BANKS, 1)
        ids = bulk.insert_rows(session, BANKS, [_row("WR5"), _row("WR6"), _row("WR7")], return_ids=True)
    stored = dict(session.execute(select(Bank.code, Bank.id).where(Bank.code.like("WR%"))).all())
    assert [stored["WR5"], stored["WR6"], stored["WR7"]] == ids


def test_text_columns_and_shared_values_arrive_as_given(session: Session) -> None:
    """JSON given as text, and values every row shares (a timestamp, strings), as `insert_rows` stores
    them — with quotes, backslashes and non-ASCII text intact."""
    at = datetime(2021, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
    texts = ['{"a": "quote \\" mark"}', '{"b": "back\\\\slash"}', '{"c": "银行"}', None]
    rows = [
        {"action": "t.x", "entity_type": "t", "entity_id": str(i), "before": None, "after": t, "reason": None}
        for i, t in enumerate(texts)
    ]
    same = {"at": at, "actor_kind": "system", "actor_id": None, "actor_name": "writer test"}
    same["request_id"] = "r"
    with bulk.pipeline(session):
        bulk.insert_rows(session, AUDIT, rows, same=same, as_text=("before", "after"))
    stored = session.execute(
        select(AUDIT.c.entity_id, AUDIT.c.after, AUDIT.c.at, AUDIT.c.actor_name)
        .where(AUDIT.c.action == "t.x")
        .order_by(AUDIT.c.entity_id)
    ).all()
    assert [s.after for s in stored] == [{"a": 'quote " mark'}, {"b": "back\\slash"}, {"c": "银行"}, None]
    assert {(s.at.replace(tzinfo=UTC), s.actor_name) for s in stored} == {(at, "writer test")}


def test_a_failed_statement_raises_and_the_rest_do_not_run(session: Session) -> None:
    bulk.insert_rows(session, BANKS, [_row("WR8")])
    nested = session.begin_nested()

    def queue_two() -> None:
        # a duplicate code, queued; its failure surfaces when the next statement is queued, if its
        # result is back by then, or at the end of the block (on SQLite: at once)
        with bulk.pipeline(session):
            bulk.insert_rows(session, BANKS, [_row("WR8")])
            bulk.insert_rows(session, BANKS, [_row("WR9")])

    with pytest.raises(IntegrityError):
        queue_two()
    nested.rollback()
    codes = set(session.scalars(select(Bank.code).where(Bank.code.like("WR%"))))
    assert codes == {"WR8"}


def test_a_failure_back_while_the_next_statement_is_queued_is_the_one_raised(session: Session) -> None:
    """Not the next statement's `PipelineAborted`, met as the writer leaves pipeline mode (on PostgreSQL;
    elsewhere the duplicate fails at once)."""
    bulk.insert_rows(session, BANKS, [_row("WR12")])
    nested = session.begin_nested()
    queued = []

    def queue_two() -> None:
        with bulk.pipeline(session):
            bulk.insert_rows(session, BANKS, [_row("WR12")])
            queued.append("WR12")
            time.sleep(0.2)  # the duplicate's result is back by the time the next statement goes
            bulk.insert_rows(session, BANKS, [_row("WR13")])

    with pytest.raises(IntegrityError):
        queue_two()
    assert queued == (["WR12"] if bulk.is_postgresql(session) else [])
    assert bulk._pipeline_of(session) is None  # out of pipeline mode: the session goes on
    assert not bulk._PIPELINES
    nested.rollback()
    assert set(session.scalars(select(Bank.code).where(Bank.code.like("WR1_")))) == {"WR12"}


def test_the_failure_is_reported_rather_than_the_aborted_query_after_it(session: Session) -> None:
    """A query made while a failed statement is still queued meets an aborted transaction; the error
    that reaches the caller is the statement's own."""
    bulk.insert_rows(session, BANKS, [_row("WR10")])
    nested = session.begin_nested()

    def query_meanwhile() -> None:
        with bulk.pipeline(session):
            bulk.insert_rows(session, BANKS, [_row("WR10")])
            session.scalars(select(Bank.id)).all()

    with pytest.raises(IntegrityError):
        query_meanwhile()
    nested.rollback()


def test_the_caller_s_own_error_wins(session: Session) -> None:
    """Over a failure still queued (on PostgreSQL; elsewhere the statement runs, and fails, at once)."""
    bulk.insert_rows(session, BANKS, [_row("WR11")])
    nested = session.begin_nested()
    expected = LookupError if bulk.is_postgresql(session) else IntegrityError

    def fail_meanwhile() -> None:
        with bulk.pipeline(session):
            bulk.insert_rows(session, BANKS, [_row("WR11")])
            raise LookupError("the caller's own")

    with pytest.raises(expected):
        fail_meanwhile()
    nested.rollback()
