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

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

import psycopg
from psycopg.adapt import PyFormat
from psycopg.types.array import ListBinaryDumper
from sqlalchemy import (
    Column,
    ColumnElement,
    Table,
    Text,
    TextClause,
    any_,
    bindparam,
    cast,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

Row = Mapping[str, Any]


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _dialect(session: Session) -> Dialect:
    return session.get_bind().dialect


# Per (table, column, dialect): bind processors and SQL type names. Per statement shape: the SQL text, so
# that SQLAlchemy's compiled cache and psycopg's prepared statements are reused from call to call.
_PROCESSORS: dict[tuple[str, str, str], Callable[[Any], Any] | None] = {}
_SQL_TYPES: dict[tuple[str, str, str], str] = {}
_TEXTS: dict[tuple[Any, ...], TextClause] = {}


def _processor(table: Table, name: str, dialect: Dialect) -> Callable[[Any], Any] | None:
    key = (table.name, name, dialect.name)
    if key not in _PROCESSORS:
        _PROCESSORS[key] = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
    return _PROCESSORS[key]


def _sql_type(table: Table, name: str, dialect: Dialect) -> str:
    key = (table.name, name, dialect.name)
    if key not in _SQL_TYPES:
        _SQL_TYPES[key] = str(table.c[name].type.dialect_impl(dialect).compile(dialect=dialect))
    return _SQL_TYPES[key]


def _text(key: tuple[Any, ...], build: Callable[[], str]) -> TextClause:
    if key not in _TEXTS:
        _TEXTS[key] = text(build())
    return _TEXTS[key]


def _default(column: Column[Any]) -> Any:
    default = column.default
    assert default is not None
    arg: Any = getattr(default, "arg", None)
    return arg(None) if default.is_callable else arg


def _layout(table: Table, rows: Sequence[Row]) -> tuple[list[str], list[str], tuple[Any, ...]]:
    """The rows' columns (all rows have the same keys), then the columns with a Python-side default that
    the rows lack, with their default values (one value per call, e.g. one timestamp)."""
    given = list(rows[0])
    missing = [
        c
        for c in table.columns
        if c.name not in rows[0] and c.default is not None and (c.default.is_scalar or c.default.is_callable)
    ]
    return given, [c.name for c in missing], tuple(_default(c) for c in missing)


def _converter(
    table: Table, dialect: Dialect, columns: Sequence[str], skip: Collection[str] = ()
) -> Callable[[Sequence[Any]], Sequence[Any]]:
    """Bind-process one row of values in `columns` order (enums to names, UTC timestamps, JSON), but
    for the `skip` columns."""
    procs = [
        (i, p)
        for i, c in enumerate(columns)
        if c not in skip and (p := _processor(table, c, dialect)) is not None
    ]

    def convert(values: Sequence[Any]) -> Sequence[Any]:
        if not procs:
            return values
        out = list(values)
        for i, proc in procs:
            if out[i] is not None:
                out[i] = proc(out[i])
        return out

    return convert


def _values(rows: Sequence[Row], given: Sequence[str]) -> Callable[[Row], tuple[Any, ...]]:
    if len(given) == 1:
        only = given[0]
        return lambda row: (row[only],)
    getter = itemgetter(*given)
    return lambda row: tuple(getter(row))


def _next_ids(session: Session, table: Table, n: int) -> list[int]:
    seq = session.scalar(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table.name})
    ids = session.scalars(text("SELECT nextval(:s) FROM generate_series(1, :n)"), {"s": seq, "n": n})
    return sorted(ids)


def insert_rows(
    session: Session,
    table: Table,
    rows: Sequence[Row],
    *,
    same: Mapping[str, Any] | None = None,
    return_ids: bool = False,
    as_text: Collection[str] = (),
) -> list[int]:
    """Insert `rows` (dicts by column name, all with the same keys) in order, each with the values in
    `same` as well; return their new ids in the same order when `return_ids` (the table's primary key
    must be an `id` column). Python-side defaults of the columns given nowhere are computed once.

    The values of the `as_text` columns are given as the text the database stores (JSON already
    written, None for NULL): they skip the column's bind processing."""
    if not rows:
        return []
    same = dict(same or {})
    if not is_postgresql(session):
        full = [{**row, **same} for row in rows] if same else list(rows)
        stmt = insert(table)
        if as_text:
            stmt = stmt.values({c: bindparam(c, type_=Text()) for c in as_text})
        if return_ids:
            stmt = stmt.returning(table.c.id, sort_by_parameter_order=True)
            return list(session.execute(stmt, full).scalars())
        session.execute(stmt, full)
        return []
    given, defaulted, defaults = _layout(table, [{**rows[0], **same}])
    dialect = _dialect(session)
    # the values every row shares: bind-processed once
    shared = {**dict(zip(defaulted, defaults, strict=True)), **same}
    constants = tuple(_converter(table, dialect, list(shared), skip=as_text)(tuple(shared.values())))
    per_row = [c for c in given if c not in same]
    columns = [*per_row, *shared]
    ids = _next_ids(session, table, len(rows)) if return_ids else []
    if return_ids:
        per_row.insert(0, "id")
        columns.insert(0, "id")
    convert = _converter(table, dialect, per_row, skip=as_text)
    values = _values(rows, [c for c in per_row if c != "id"])
    conn = session.connection().connection.driver_connection
    assert conn is not None
    quoted = ", ".join(f'"{c}"' for c in columns)
    sql = f'COPY "{table.name}" ({quoted}) FROM STDIN'
    try:
        with conn.cursor() as cur, cur.copy(sql) as copy:
            constants = _as_copy_text(cur, constants)
            if return_ids:
                for i, row in zip(ids, rows, strict=True):
                    copy.write_row((*convert((i, *values(row))), *constants))
            else:
                for row in rows:
                    copy.write_row((*convert(values(row)), *constants))
    except psycopg.Error as exc:
        # the driver's own error, outside SQLAlchemy: raise it as SQLAlchemy would (IntegrityError → 409)
        raise DBAPIError.instance(sql, None, exc, psycopg.Error) from exc
    return ids


def _as_copy_text(cur: psycopg.Cursor[Any], values: Sequence[Any]) -> tuple[Any, ...]:
    """Values written in every row of a COPY, dumped to their text form once rather than once per row
    (a timestamp costs psycopg more than the rest of a row); COPY reads that text as it would have."""
    tx = psycopg.adapt.Transformer(cur)

    def text(value: Any) -> str | None:
        if value is None or type(value) is str:
            return value
        dumped = tx.get_dumper(value, PyFormat.TEXT).dump(value)
        return None if dumped is None else bytes(dumped).decode()

    return tuple(text(v) for v in values)


def convert_values(
    table: Table, dialect: Dialect, columns: Sequence[str], values: Sequence[Any]
) -> Sequence[Any]:
    return _converter(table, dialect, columns)(values)


class _Array(list[Any]):
    """A column of values sent as one array parameter, in PostgreSQL's binary format: psycopg writes the
    text format element by element in Python, quoting and escaping each, several times slower."""


psycopg.adapters.register_dumper(_Array, ListBinaryDumper)  # for connections made from now on


def _unnest(table: Table, dialect: Dialect, columns: Sequence[str]) -> str:
    """`unnest(:c0::T0[], :c1::T1[], …) AS v("a", "b", …)`: one array parameter per column."""
    arrays = ", ".join(
        f"CAST(:c{i} AS {_sql_type(table, name, dialect)}[])" for i, name in enumerate(columns)
    )
    names = ", ".join(f'"{c}"' for c in columns)
    return f"unnest({arrays}) AS v({names})"


def _arrays(
    table: Table, dialect: Dialect, rows: Sequence[Row], columns: Sequence[str]
) -> dict[str, list[Any]]:
    """The parameters of `_unnest`: each column's values, bind-processed."""
    params: dict[str, list[Any]] = {}
    for i, name in enumerate(columns):
        values = [row[name] for row in rows]
        proc = _processor(table, name, dialect)
        params[f"c{i}"] = _Array(values if proc is None else [None if v is None else proc(v) for v in values])
    return params


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
    dialect = _dialect(session)

    def build() -> str:
        sets = ", ".join(f'"{c}" = v."{c}"' for c in columns)
        source = _unnest(table, dialect, [key, *columns])
        return f'UPDATE "{table.name}" AS t SET {sets} FROM {source} WHERE t."{key}" = v."{key}"'

    sql = _text(("update", table.name, key, *columns), build)
    session.execute(sql, _arrays(table, dialect, rows, [key, *columns]))


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
    dialect = _dialect(session)

    def build() -> str:
        names = ", ".join(f'"{c}"' for c in columns)
        returned = ", ".join(f'"{c}"' for c in returning)
        return (
            f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM {_unnest(table, dialect, columns)} '
            f"ON CONFLICT DO NOTHING RETURNING {returned}"
        )

    sql = _text(("insert_returning", table.name, tuple(columns), tuple(returning)), build)
    return [tuple(r) for r in session.execute(sql, _arrays(table, dialect, rows, columns))]


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
    dialect = _dialect(session)

    def build() -> str:
        names = ", ".join(f'"{c}"' for c in columns)
        sets = ", ".join(f'"{f}" = t."{f}" + excluded."{f}"' for f in figures)
        conflict = ", ".join(f'"{k}"' for k in keys)
        source = _unnest(table, dialect, columns)
        return (
            f'INSERT INTO "{table.name}" AS t ({names}) SELECT {names} FROM {source} '
            f"ON CONFLICT ({conflict}) DO UPDATE SET {sets}"
        )

    sql = _text(("upsert_add", table.name, tuple(keys), tuple(figures)), build)
    session.execute(sql, _arrays(table, dialect, rows, columns))


def one_of(session: Session, column: ColumnElement[Any], values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN (values)`; on PostgreSQL `column = ANY(:array)`, one parameter however many values
    (a statement with thousands of parameters costs more to build and parse than to run)."""
    values = list(values)
    if is_postgresql(session):
        dialect = _dialect(session)
        proc = column.type.dialect_impl(dialect).bind_processor(dialect)
        array = _Array(values if proc is None else [None if v is None else proc(v) for v in values])
        # bound untyped, so that SQLAlchemy hands the array to the driver as it is, and cast in SQL
        return column == any_(cast(bindparam(None, array), postgresql.ARRAY(column.type)))
    return column.in_(values)


def select_matching(
    session: Session, table: Table, keys: Sequence[str], rows: Sequence[Row], columns: Sequence[str]
) -> list[tuple[Any, ...]]:
    """The `columns` of the stored rows whose `keys` equal those of one of `rows` (no lock)."""
    if not rows:
        return []
    cols = [table.c[c] for c in columns]
    if not is_postgresql(session):
        out: list[tuple[Any, ...]] = []
        key_cols = tuple_(*(table.c[k] for k in keys))
        for i in range(0, len(rows), 500):
            wanted = [tuple(r[k] for k in keys) for r in rows[i : i + 500]]
            out.extend(tuple(r) for r in session.execute(select(*cols).where(key_cols.in_(wanted))))
        return out
    dialect = _dialect(session)

    def build() -> str:
        on = " AND ".join(f't."{k}" = v."{k}"' for k in keys)
        names = ", ".join(f't."{c}"' for c in columns)
        return f'SELECT {names} FROM "{table.name}" AS t JOIN {_unnest(table, dialect, keys)} ON {on}'

    sql = _text(("select_matching", table.name, tuple(keys), tuple(columns)), build)
    return [tuple(r) for r in session.execute(sql, _arrays(table, dialect, rows, keys))]


__all__ = [
    "insert_returning",
    "insert_rows",
    "is_postgresql",
    "one_of",
    "select_matching",
    "update_rows",
    "upsert_add",
]
