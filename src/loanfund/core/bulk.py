"""Writing many rows at once, in the caller's transaction, as fast as the database allows.

Bulk submissions write thousands of rows per request. Through the ORM unit of work, or even SQLAlchemy's
multi-row INSERT … RETURNING, most of the time goes into Python (instrumented objects, rendering and
re-parsing statements with tens of thousands of parameters). On PostgreSQL these helpers use the
protocol's bulk paths instead:

* `insert_rows`: COPY … FROM STDIN; ids, when wanted, are drawn from the table's sequence first
  (`nextval` over `generate_series`), so COPY needs no RETURNING;
* `update_rows`: one `UPDATE … FROM unnest(…)` with a column array per field;
* `insert_returning` and `upsert_add`: one `INSERT … SELECT … FROM unnest(…) ON CONFLICT …`.

Values go through each column's bind processing first (enums to their names, UTC timestamps, JSON), and
missing columns get their Python-side defaults, exactly as an ORM or Core INSERT would. On other
databases (SQLite in development and tests) the same calls use plain SQLAlchemy Core statements.

Everything only writes; nothing commits. The ORM identity map is not told: use these for rows the session
has not loaded (new rows, or rows the caller read with Core).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Table, bindparam, insert, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

Row = Mapping[str, Any]


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _dialect(session: Session) -> Dialect:
    return session.get_bind().dialect


def _processor(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    return column.type.dialect_impl(dialect).bind_processor(dialect)


def _with_defaults(table: Table, columns: Sequence[str]) -> list[str]:
    """The columns to write: those given, plus any with a Python-side default."""
    given = set(columns)
    extra = [
        c.name
        for c in table.columns
        if c.name not in given and c.default is not None and (c.default.is_scalar or c.default.is_callable)
    ]
    return [*columns, *extra]


def _default(column: Column[Any]) -> Any:
    default = column.default
    assert default is not None
    arg: Any = getattr(default, "arg", None)
    return arg(None) if default.is_callable else arg


def _processed(
    table: Table, dialect: Dialect, rows: Sequence[Row], columns: Sequence[str]
) -> Iterator[tuple[Any, ...]]:
    """Each row as a tuple in `columns` order, bind-processed, defaults filled in."""
    cols = [table.c[name] for name in columns]
    procs = [_processor(c, dialect) for c in cols]
    for row in rows:
        out = []
        for name, col, proc in zip(columns, cols, procs, strict=True):
            value = row[name] if name in row else _default(col)
            out.append(proc(value) if proc is not None and value is not None else value)
        yield tuple(out)


def _next_ids(session: Session, table: Table, n: int) -> list[int]:
    seq = session.scalar(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table.name})
    ids = session.scalars(text("SELECT nextval(:s) FROM generate_series(1, :n)"), {"s": seq, "n": n})
    return sorted(ids)


def insert_rows(
    session: Session, table: Table, rows: Sequence[Row], *, return_ids: bool = False
) -> list[int]:
    """Insert `rows` (dicts by column name, all with the same keys) in order; return their new ids in
    the same order when `return_ids` (the table's primary key must be an `id` column)."""
    if not rows:
        return []
    if not is_postgresql(session):
        if return_ids:
            stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
            return list(session.execute(stmt, list(rows)).scalars())
        session.execute(insert(table), list(rows))
        return []
    ids: list[int] = []
    columns = list(rows[0].keys())
    if return_ids:
        ids = _next_ids(session, table, len(rows))
        rows = [{**row, "id": i} for row, i in zip(rows, ids, strict=True)]
        columns = [*columns, "id"]
    columns = _with_defaults(table, columns)
    conn = session.connection().connection.driver_connection
    assert conn is not None
    quoted = ", ".join(f'"{c}"' for c in columns)
    with conn.cursor() as cur, cur.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
        for values in _processed(table, _dialect(session), rows, columns):
            copy.write_row(values)
    return ids


def _sql_type(column: Column[Any], dialect: Dialect) -> str:
    return str(column.type.dialect_impl(dialect).compile(dialect=dialect))


def _arrays(
    table: Table, dialect: Dialect, rows: Sequence[Row], columns: Sequence[str]
) -> tuple[str, dict[str, list[Any]]]:
    """`unnest(:c0::T0[], :c1::T1[], …) AS v("a", "b", …)` and its parameters, one array per column."""
    values = list(_processed(table, dialect, rows, columns))
    params = {f"c{i}": [v[i] for v in values] for i in range(len(columns))}
    arrays = ", ".join(
        f"CAST(:c{i} AS {_sql_type(table.c[name], dialect)}[])" for i, name in enumerate(columns)
    )
    names = ", ".join(f'"{c}"' for c in columns)
    return f"unnest({arrays}) AS v({names})", params


def update_rows(session: Session, table: Table, rows: Sequence[Row], *, key: str = "id") -> None:
    """Set each row's columns (all rows have the same keys) on the stored row with the same `key`."""
    if not rows:
        return
    columns = [c for c in rows[0] if c != key]
    if not is_postgresql(session):
        stmt = (
            update(table)
            .where(table.c[key] == bindparam("_key"))
            .values({c: bindparam(f"_v_{c}") for c in columns})
        )
        session.execute(stmt, [{"_key": r[key], **{f"_v_{c}": r[c] for c in columns}} for r in rows])
        return
    source, params = _arrays(table, _dialect(session), rows, [key, *columns])
    sets = ", ".join(f'"{c}" = v."{c}"' for c in columns)
    session.execute(
        text(f'UPDATE "{table.name}" AS t SET {sets} FROM {source} WHERE t."{key}" = v."{key}"'), params
    )


def insert_returning(
    session: Session, table: Table, rows: Sequence[Row], returning: Sequence[str]
) -> list[tuple[Any, ...]]:
    """INSERT … ON CONFLICT DO NOTHING; the `returning` columns of the rows actually inserted."""
    if not rows:
        return []
    columns = list(rows[0].keys())
    ret = [table.c[c] for c in returning]
    if not is_postgresql(session):
        out: list[tuple[Any, ...]] = []
        for i in range(0, len(rows), 500):
            stmt = (
                sqlite.insert(table).values(list(rows[i : i + 500])).on_conflict_do_nothing().returning(*ret)
            )
            out.extend(tuple(r) for r in session.execute(stmt))
        return out
    source, params = _arrays(table, _dialect(session), rows, columns)
    names = ", ".join(f'"{c}"' for c in columns)
    returned = ", ".join(f'"{c}"' for c in returning)
    sql = text(
        f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM {source} '
        f"ON CONFLICT DO NOTHING RETURNING {returned}"
    )
    return [tuple(r) for r in session.execute(sql, params)]


def upsert_add(
    session: Session, table: Table, keys: Sequence[str], figures: Sequence[str], rows: Sequence[Row]
) -> None:
    """Add each row's `figures` to the stored row with its `keys`, inserting it if absent. Keys must be
    distinct within `rows`."""
    if not rows:
        return
    if not is_postgresql(session):
        stmt = sqlite.insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={f: table.c[f] + stmt.excluded[f] for f in figures}
        )
        session.execute(stmt, list(rows))
        return
    columns = [*keys, *figures]
    source, params = _arrays(table, _dialect(session), rows, columns)
    names = ", ".join(f'"{c}"' for c in columns)
    sets = ", ".join(f'"{f}" = t."{f}" + excluded."{f}"' for f in figures)
    conflict = ", ".join(f'"{k}"' for k in keys)
    session.execute(
        text(
            f'INSERT INTO "{table.name}" AS t ({names}) SELECT {names} FROM {source} '
            f"ON CONFLICT ({conflict}) DO UPDATE SET {sets}"
        ),
        params,
    )


def locked_select(session: Session, table: Table, where: Any, order_by: Sequence[Any]) -> list[Row]:
    """Rows of `table` matching `where`, locked (FOR UPDATE on PostgreSQL) in `order_by` order, as dicts."""
    stmt = select(table).where(where).order_by(*order_by).with_for_update()
    return [dict(r._mapping) for r in session.execute(stmt)]


__all__ = [
    "insert_returning",
    "insert_rows",
    "is_postgresql",
    "locked_select",
    "update_rows",
    "upsert_add",
]
