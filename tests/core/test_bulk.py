"""core.bulk writes what Core statements write, and fails the way they fail."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loanfund.banks.models import Bank, BankStatus
from loanfund.core import bulk

BANKS: Table = Bank.__table__  # type: ignore[assignment]


def _row(code: str) -> dict[str, object]:
    return {"code": code, "name": f"bank {code}", "fund_share": Decimal("0.8"), "status": BankStatus.active}


def test_insert_rows_fills_defaults_and_returns_ids_in_order(session: Session) -> None:
    ids = bulk.insert_rows(session, BANKS, [_row("BULK1"), _row("BULK2")], return_ids=True)
    stored = {b.code: b for b in session.scalars(select(Bank).where(Bank.id.in_(ids)))}
    assert [stored["BULK1"].id, stored["BULK2"].id] == ids
    assert stored["BULK1"].status is BankStatus.active
    assert stored["BULK1"].created_at is not None  # the column's Python-side default


def test_update_and_select_matching(session: Session) -> None:
    (bank_id,) = bulk.insert_rows(session, BANKS, [_row("BULK3")], return_ids=True)
    bulk.update_rows(session, BANKS, [{"id": bank_id, "name": "renamed", "status": BankStatus.suspended}])
    found = bulk.select_matching(session, BANKS, ("id",), [{"id": bank_id}], ("name", "status"))
    assert found == [("renamed", "suspended")]  # a StrEnum equals its value


def test_a_duplicate_is_an_integrity_error(session: Session) -> None:
    bulk.insert_rows(session, BANKS, [_row("BULK4")])
    nested = session.begin_nested()
    with pytest.raises(IntegrityError):
        bulk.insert_rows(session, BANKS, [_row("BULK4")])
    nested.rollback()


def test_array_parameters_keep_every_value(session: Session) -> None:
    """Columns go to PostgreSQL as binary arrays: quotes, backslashes, braces, commas, the word NULL and
    non-ASCII text arrive as they were, and `one_of` finds them."""
    names = ['quote " mark', "back\\slash", "{braces}, commas", "NULL", "银行", ""]
    shares = [
        Decimal("0.55"),
        Decimal("1"),
        Decimal("0.0001"),
        Decimal("0.5"),
        Decimal("0.8"),
        Decimal("0.9"),
    ]
    ids = bulk.insert_rows(session, BANKS, [_row(f"ARR{i}") for i in range(len(names))], return_ids=True)
    rows = [{"id": i, "name": n, "fund_share": f} for i, n, f in zip(ids, names, shares, strict=True)]
    bulk.update_rows(session, BANKS, rows)
    found = bulk.select_matching(session, BANKS, ("id",), rows, ("id", "name", "fund_share"))
    assert sorted(found) == sorted((r["id"], r["name"], r["fund_share"]) for r in rows)
    matched = session.scalars(select(Bank.name).where(bulk.one_of(session, BANKS, "name", names)))
    assert sorted(matched) == sorted(names)


def test_values_shared_by_every_row_are_stored_as_given(session: Session) -> None:
    at = datetime(2021, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
    rows = [_row(f"SAME{i}") for i in range(3)]
    same = {"created_at": at, "fund_share": Decimal("0.75"), "status": BankStatus.suspended}
    bulk.insert_rows(session, BANKS, [{k: v for k, v in r.items() if k not in same} for r in rows], same=same)
    stored = session.execute(
        select(BANKS.c.created_at, BANKS.c.fund_share, BANKS.c.status).where(BANKS.c.code.like("SAME%"))
    ).all()
    assert len(stored) == 3
    for created_at, share, status in stored:
        assert created_at.replace(tzinfo=UTC) == at
        assert (share, status) == (Decimal("0.75"), "suspended")


@pytest.mark.parametrize(
    "names",
    [
        ["plain", "with space", "{braces}, commas", "NULL", "银行", "", " lead", "tab\there", "new\nline"],
        ['quote " mark', "back\\slash", "x"],
    ],
    ids=["no-escaping-needed", "escaping-needed"],
)
def test_text_and_integer_columns_keep_every_value(session: Session, names: list[str]) -> None:
    """Text columns go as an array literal when no value needs escaping, in binary otherwise; integer
    columns in binary, laid out without a per-value Python call: each value arrives as it was."""
    ids = bulk.insert_rows(session, BANKS, [_row(f"TXT{i}") for i in range(len(names))], return_ids=True)
    quotas = [2**62, None, 1, 99, 10**12, 7, None, 3, 5][: len(names)]
    rows = [{"id": i, "name": n, "lending_quota_fen": q} for i, n, q in zip(ids, names, quotas, strict=True)]
    bulk.update_rows(session, BANKS, rows)
    found = bulk.select_matching(session, BANKS, ("id",), rows, ("id", "name", "lending_quota_fen"))
    assert sorted(found) == sorted((r["id"], r["name"], r["lending_quota_fen"]) for r in rows)


def test_one_of_finds_text_and_integer_values(session: Session) -> None:
    """Plain references (sent as an array literal) and ids (binary) are matched exactly."""
    codes = [f"ONE{i}" for i in range(5)]
    ids = bulk.insert_rows(session, BANKS, [_row(c) for c in codes], return_ids=True)
    by_code = session.scalars(
        select(Bank.id).where(bulk.one_of(session, BANKS, "code", [*codes[:3], "NONE"]))
    )
    assert sorted(by_code) == sorted(ids[:3])
    by_id = session.scalars(select(Bank.code).where(bulk.one_of(session, BANKS, "id", ids[2:])))
    assert sorted(by_id) == codes[2:]


def test_enum_columns_take_members_and_their_values_and_refuse_others(session: Session) -> None:
    ids = bulk.insert_rows(session, BANKS, [_row("ENUM1"), _row("ENUM2")], return_ids=True)
    bulk.update_rows(
        session,
        BANKS,
        [{"id": ids[0], "status": BankStatus.suspended}, {"id": ids[1], "status": "suspended"}],
    )
    assert set(session.scalars(select(Bank.status).where(Bank.id.in_(ids)))) == {BankStatus.suspended}
    with pytest.raises(Exception, match="not among the defined enum values"):
        bulk.update_rows(session, BANKS, [{"id": ids[0], "status": "closed"}])


def test_boolean_columns_keep_every_value(session: Session) -> None:
    """Written by the bulk paths' own array dumper on PostgreSQL, in a pipeline and outside one."""
    rows = [{**_row(f"BOOL{i}"), "allow_contracts_without_application": i % 2 == 0} for i in range(5)]
    ids = bulk.insert_rows(session, BANKS, rows, return_ids=True)
    with bulk.pipeline(session):
        bulk.update_rows(
            session,
            BANKS,
            [{"id": i, "allow_contracts_without_application": n % 3 == 0} for n, i in enumerate(ids)],
        )
    stored = dict(
        session.execute(
            select(Bank.id, Bank.allow_contracts_without_application).where(Bank.id.in_(ids))
        ).all()
    )
    assert [stored[i] for i in ids] == [True, False, False, True, False]
