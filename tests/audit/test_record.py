"""Audit values: `record_many` writes them as `record` does."""

import enum
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from loanfund.audit.service import Actor, Entry, _json_text, _jsonable, record, record_many
from loanfund.core import bulk
from loanfund.loans.state import LoanState


class _Level(enum.IntEnum):
    low = 1


class _Plain(enum.Enum):
    on = "on"


VALUES: list[dict[str, Any]] = [
    {},
    {"state": LoanState.active, "outstanding_fen": 10_000, "npl_since": None, "ok": True, "r": 0.5},
    {"amount": Decimal("100.10"), "rate": Decimal("3.1000"), "day": date(2021, 3, 1)},
    {"at": datetime(2021, 3, 1, 8, 30, tzinfo=UTC), "naive": datetime(2021, 3, 1)},
    {"level": _Level.low, "plain": _Plain.on, "name": '银行 "quoted"\n'},
    {"nested": {"list": [1, LoanState.settled, (date(2021, 1, 1), None)], "inner": {"d": Decimal("1")}}},
]


@pytest.mark.parametrize("value", VALUES)
def test_json_text_is_the_jsonable_value_written(value: dict[str, Any]) -> None:
    """The same JSON value (the spacing may differ)."""
    assert json.loads(_json_text(value)) == json.loads(json.dumps(_jsonable(value)))


@pytest.mark.parametrize("through_writer", [False, True], ids=["direct", "in-a-pipeline"])
def test_record_many_stores_what_record_stores(session: Session, through_writer: bool) -> None:
    """Directly, or queued in a bulk pipeline (all records as one document in both cases)."""
    actor = Actor("system", None, "system")
    for i, value in enumerate(VALUES):
        record(session, actor, "test.one", "thing", i, before=value, after=value)
    entries = [Entry("test.many", "thing", i, before=v, after=v) for i, v in enumerate(VALUES)]
    entries.append(Entry("test.many", "thing", "only-a-reason", reason='quote " and 银行'))
    if through_writer:
        with bulk.pipeline(session):
            record_many(session, actor, entries)
    else:
        record_many(session, actor, entries)
    record_many(session, actor, [Entry("test.none", "thing", 0)])
    session.flush()
    rows = session.scalars(select(AuditRecord).where(AuditRecord.entity_type == "thing")).all()
    one = {r.entity_id: (r.before, r.after) for r in rows if r.action == "test.one"}
    many = {r.entity_id: (r.before, r.after) for r in rows if r.action == "test.many"}
    reason = many.pop("only-a-reason")
    assert many == one
    assert reason == (None, None)
    stored = session.scalar(select(AuditRecord.reason).where(AuditRecord.entity_id == "only-a-reason"))
    assert stored == 'quote " and 银行'
    assert [(r.before, r.after) for r in rows if r.action == "test.none"] == [(None, None)]
