"""Writing many rows at once, in the caller's transaction, as fast as the database allows.

Bulk submissions write thousands of rows per request. Through the ORM unit of work, or even SQLAlchemy's
multi-row INSERT … RETURNING, most of the time goes into Python (instrumented objects, rendering and
re-parsing statements with tens of thousands of parameters). On PostgreSQL these helpers use the
protocol's bulk paths instead:

* `insert_rows`: COPY … FROM STDIN; ids, when wanted, are drawn from the table's sequence first
  (`nextval` over `generate_series`), so COPY needs no RETURNING;
* `update_rows`: one `UPDATE … FROM unnest(…)` with a column array per field;
* `insert_returning` and `upsert_add`: one `INSERT … SELECT … FROM unnest(…) ON CONFLICT …`.

On PostgreSQL the statements go to psycopg directly (with binary array parameters), not through
SQLAlchemy's `execute`: the driver's errors are raised as SQLAlchemy would raise them.

Inside `with pipeline(session):` the same calls send their inserts and updates without waiting for them
(psycopg's pipeline mode), in the session's transaction: the database writes one part of a batch while
Python works out the next. The callers do not change: `audit` and `portfolio` write through these
functions whether or not a pipeline is open on the session.

Values go through each column's bind processing first (enums to their names, UTC timestamps, JSON), and
missing columns get their Python-side defaults, exactly as an ORM or Core INSERT would. On other
databases (SQLite in development and tests) the same calls use plain SQLAlchemy Core statements.

Everything only writes; nothing commits. The ORM identity map is not told: use these for rows the session
has not loaded (new rows, or rows the caller read with Core).
"""

from __future__ import annotations

import array
import struct
import sys
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date
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
    any_,
    bindparam,
    cast,
    event,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

Row = Mapping[str, Any]


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _dialect(session: Session) -> Dialect:
    return session.get_bind().dialect


# Per (table, column, dialect): bind processors and SQL type names. Per statement shape: the SQL text, so
# that psycopg's prepared statements are reused from call to call. Per table: its id sequence.
_PROCESSORS: dict[tuple[str, str, str], Callable[[Any], Any] | None] = {}
_SQL_TYPES: dict[tuple[str, str, str], str] = {}
_SQL: dict[tuple[Any, ...], str] = {}
_SEQUENCES: dict[str, str] = {}


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


def _sql(key: tuple[Any, ...], build: Callable[[], str]) -> str:
    if key not in _SQL:
        _SQL[key] = build()
    return _SQL[key]


# --- PostgreSQL: statements through psycopg --------------------------------------------------------------


def _driver(session: Session) -> psycopg.Connection[Any]:
    """The psycopg connection of the session's transaction (begun if need be), with the session's
    pending changes flushed first, as `session.execute` would have."""
    if session.autoflush:
        session.flush()
    conn = session.connection().connection.driver_connection
    assert conn is not None
    _pause_writer(conn)  # a `pipeline` on it waits for its statements first
    return conn  # type: ignore[no-any-return]


@dataclass(frozen=True)
class _Job:
    """A statement prepared in the caller's thread (SQL rendered, parameters bind-processed), to be
    run on a psycopg connection: now, or later in a `pipeline`. `copy` writes the rows of a COPY."""

    sql: str
    params: Mapping[str, Any] | Sequence[Any] | None = None
    fetch: bool = False
    copy: Callable[[psycopg.Cursor[Any], psycopg.Copy], None] | None = None

    def __call__(self, conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
        cur = self.send(conn)
        return self.rows(cur) if self.fetch else []

    def send(self, conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
        try:
            if self.copy is not None:
                with conn.cursor() as cur, cur.copy(self.sql) as copy:
                    self.copy(cur, copy)
                return cur
            return conn.execute(self.sql, self.params)
        except psycopg.Error as exc:
            raise self.error(exc) from exc

    def rows(self, cur: psycopg.Cursor[Any]) -> list[tuple[Any, ...]]:
        try:
            return cur.fetchall()
        except psycopg.Error as exc:
            raise self.error(exc) from exc

    def error(self, exc: psycopg.Error) -> StatementError:
        """The driver's own error, outside SQLAlchemy, as SQLAlchemy would raise it (IntegrityError →
        409)."""
        return DBAPIError.instance(self.sql, None, exc, psycopg.Error)


def _run(
    session: Session, sql: str, params: Mapping[str, Any] | Sequence[Any], *, fetch: bool = False
) -> list[tuple[Any, ...]]:
    return _Job(sql, params, fetch)(_driver(session))


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
    if table.name not in _SEQUENCES:
        seq = _run(session, "SELECT pg_get_serial_sequence(%s, 'id')", (table.name,), fetch=True)[0][0]
        _SEQUENCES[table.name] = seq
    rows = _run(
        session,
        "SELECT nextval(%s) FROM generate_series(1, %s)",
        (_SEQUENCES[table.name], n),
        fetch=True,
    )
    return sorted(r[0] for r in rows)


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
    written, None for NULL): they skip the column's bind processing.
    """
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
    pipe = _pipeline_of(session)
    if pipe is not None:
        ids = pipe.take_ids(table, len(rows)) if return_ids else []
        pipe.send(_insert_job(session, table, rows, same, ids, as_text))
        return ids
    ids = _next_ids(session, table, len(rows)) if return_ids else []
    _copy_job(session, table, rows, same, ids, as_text)(_driver(session))
    return ids


def reserve_ids(session: Session, table: Table, n: int) -> None:
    """Inside a `pipeline`: draw `n` ids of `table` now, in one query, for the inserts with `return_ids`
    queued later (so that queuing them never waits). Elsewhere nothing to do."""
    pipe = _pipeline_of(session)
    if pipe is not None and n > 0:
        pipe.reserve_ids(table, n)


def insert_documents(
    session: Session,
    table: Table,
    rows: Sequence[Row],
    *,
    same: Mapping[str, Any],
    encode: Callable[[Any], str],
) -> None:
    """`insert_rows` for rows with JSON columns (audit records, say), given as Python values. On
    PostgreSQL each JSON column goes as one JSON array, written by one call of `encode`, which the
    database splits (`json_array_elements`) — not one encoding call per value. Elsewhere the values
    are written to JSON text by `encode` one by one."""
    if not rows:
        return
    if not is_postgresql(session):
        json_columns = [c for c in rows[0] if _sql_type(table, c, _dialect(session)) == "JSON"]
        texts = [
            {**row, **{c: None if row[c] is None else encode(row[c]) for c in json_columns}} for row in rows
        ]
        insert_rows(session, table, texts, same=same, as_text=json_columns)
        return
    _dispatch(session, _documents_job(session, table, rows, same, encode))


def _dispatch(session: Session, job: _Job) -> None:
    """Run a statement that returns nothing: queued on the session's pipeline if one is open, else now."""
    pipe = _pipeline_of(session)
    if pipe is not None:
        pipe.send(job)
    else:
        job(_driver(session))


def _split(
    session: Session, table: Table, rows: Sequence[Row], same: Mapping[str, Any], skip: Collection[str] = ()
) -> tuple[Dialect, list[str], dict[str, Any], tuple[Any, ...]]:
    """The dialect; the rows' own columns; the columns every row has the same value in (`same`, and the
    Python-side defaults of the columns given nowhere, computed once); and those values, bind-processed
    once (but the `skip` columns)."""
    given, defaulted, defaults = _layout(table, [{**rows[0], **same}])
    dialect = _dialect(session)
    shared = {**dict(zip(defaulted, defaults, strict=True)), **same}
    constants = tuple(_converter(table, dialect, list(shared), skip=skip)(tuple(shared.values())))
    return dialect, [c for c in given if c not in same], shared, constants


def _shared_casts(table: Table, dialect: Dialect, shared: Mapping[str, Any]) -> list[str]:
    """The SQL of the values every row shares, one parameter each (`_shared_params`)."""
    return [f"CAST(%(s{i})s AS {_sql_type(table, c, dialect)})" for i, c in enumerate(shared)]


def _shared_params(constants: Sequence[Any]) -> dict[str, Any]:
    return {f"s{i}": v for i, v in enumerate(constants)}


def _copy_job(
    session: Session,
    table: Table,
    rows: Sequence[Row],
    same: Mapping[str, Any],
    ids: Sequence[int],
    as_text: Collection[str],
) -> _Job:
    """`insert_rows` on PostgreSQL: a COPY of `rows`, with `ids` when given."""
    dialect, per_row, shared, constants = _split(session, table, rows, same, as_text)
    columns = [*per_row, *shared]
    if ids:
        per_row.insert(0, "id")
        columns.insert(0, "id")
    convert = _converter(table, dialect, per_row, skip=as_text)
    values = _values(rows, [c for c in per_row if c != "id"])
    quoted = ", ".join(f'"{c}"' for c in columns)

    def write(cur: psycopg.Cursor[Any], copy: psycopg.Copy) -> None:
        shared_text = _as_copy_text(cur, constants)
        if ids:
            for i, row in zip(ids, rows, strict=True):
                copy.write_row((*convert((i, *values(row))), *shared_text))
        else:
            for row in rows:
                copy.write_row((*convert(values(row)), *shared_text))

    return _Job(f'COPY "{table.name}" ({quoted}) FROM STDIN', copy=write)


def _insert_job(
    session: Session,
    table: Table,
    rows: Sequence[Row],
    same: Mapping[str, Any],
    ids: Sequence[int],
    as_text: Collection[str],
) -> _Job:
    """`insert_rows` as `INSERT … SELECT … FROM unnest(…)` (for a pipeline, which has no COPY): a
    column array per field, and a plain parameter per value every row shares."""
    dialect, per_row, shared, constants = _split(session, table, rows, same, as_text)
    arrayed = ["id", *per_row] if ids else per_row

    def build() -> str:
        names = ", ".join(f'"{c}"' for c in [*arrayed, *shared])
        values = [f'v."{c}"' for c in arrayed] + _shared_casts(table, dialect, shared)
        return (
            f'INSERT INTO "{table.name}" ({names}) SELECT {", ".join(values)} '
            f"FROM {_unnest(table, dialect, arrayed)}"
        )

    sql = _sql(("insert", table.name, tuple(arrayed), tuple(shared)), build)
    if ids:
        rows = [{"id": i, **row} for i, row in zip(ids, rows, strict=True)]
    params: dict[str, Any] = _arrays(table, dialect, rows, arrayed, skip=as_text)
    return _Job(sql, {**params, **_shared_params(constants)})


def _documents_job(
    session: Session,
    table: Table,
    rows: Sequence[Row],
    same: Mapping[str, Any],
    encode: Callable[[Any], str],
) -> _Job:
    """`insert_documents` on PostgreSQL: a column array per plain field, one JSON array per JSON field (of
    `null` where the field is None), read in step by `ROWS FROM`."""
    dialect, per_row, shared, constants = _split(session, table, rows, same)
    plain = [c for c in per_row if _sql_type(table, c, dialect) != "JSON"]
    documents = [c for c in per_row if c not in plain]

    def build() -> str:
        names = ", ".join(f'"{c}"' for c in [*plain, *documents, *shared])
        values = (
            [f'v."{c}"' for c in plain]
            + [f'CASE json_typeof(v."{c}") WHEN \'null\' THEN NULL ELSE v."{c}" END' for c in documents]
            + _shared_casts(table, dialect, shared)
        )
        functions = [
            f"unnest(CAST(%(c{i})s AS {_sql_type(table, c, dialect)}[]))" for i, c in enumerate(plain)
        ] + [f"json_array_elements(CAST(%(d{i})s AS JSON))" for i in range(len(documents))]
        columns = ", ".join(f'"{c}"' for c in [*plain, *documents])
        return (
            f'INSERT INTO "{table.name}" ({names}) SELECT {", ".join(values)} '
            f"FROM ROWS FROM ({', '.join(functions)}) AS v({columns})"
        )

    sql = _sql(("documents", table.name, tuple(per_row), tuple(shared)), build)
    params: dict[str, Any] = _arrays(table, dialect, rows, plain)
    params.update({f"d{i}": encode([row[c] for row in rows]) for i, c in enumerate(documents)})
    return _Job(sql, {**params, **_shared_params(constants)})


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


# Columns of the commonest types skip even psycopg's generic binary list dumper (which looks through
# the list twice for its element type, then dumps element by element, in Python): their wire format is
# written here, mostly by C code. Binary format: ndim, has-null flag, element type, length, lower bound,
# then per element its length (-1 for NULL) and value.
_HEAD = struct.Struct("!iiIii")
_NULL = b"\xff\xff\xff\xff"
_LENGTH = struct.Struct("!i")
_EPOCH = date(2000, 1, 1).toordinal()  # PostgreSQL's day 0
_BIG_ENDIAN = sys.byteorder == "big"


def _fixed(values: Sequence[Any], elem_oid: int, size: int, code: str) -> bytes:
    """A binary array of fixed-size integers (`code` "q", "i" or "b", `size` 8, 4 or 1 bytes)."""
    n = len(values)
    if not n:
        return struct.pack("!iiI", 0, 0, elem_oid)
    if None in values:
        item = struct.Struct(f"!i{code}")
        body = b"".join(_NULL if v is None else item.pack(size, v) for v in values)
        return _HEAD.pack(1, 1, elem_oid, n, 1) + body
    packed = array.array(code, values)  # checks each value's type and range, in C
    if not _BIG_ENDIAN:
        packed.byteswap()
    data = packed.tobytes()
    # each element: its length (4 bytes: 0, 0, 0, size), then its value; laid out by strided copies
    cell = 4 + size
    cells = bytearray(cell * n)
    cells[3::cell] = bytes([size]) * n
    for k in range(size):
        cells[4 + k :: cell] = data[k::size]
    return _HEAD.pack(1, 0, elem_oid, n, 1) + bytes(cells)


class _Int8s(list[Any]):
    """A BIGINT column's values."""


class _Int4s(list[Any]):
    """An INTEGER column's values."""


class _Dates(list[Any]):
    """A DATE column's values."""


class _Bools(list[Any]):
    """A BOOLEAN column's values."""


class _Texts(list[Any]):
    """A text column's values (VARCHAR, TEXT, and JSON given as text)."""


class _TextLiteral(str):
    """A text column's values as an array literal, `{"a","b"}`: what `_array` makes of values with no
    NULL, no double quote and no backslash, which need no escaping (most: references, codes, states)."""


class _Int8sDumper(psycopg.adapt.Dumper):
    format = psycopg.pq.Format.BINARY
    oid = 1016  # int8[]

    def dump(self, obj: Any) -> bytes:
        return _fixed(obj, 20, 8, "q")


class _Int4sDumper(psycopg.adapt.Dumper):
    format = psycopg.pq.Format.BINARY
    oid = 1007  # int4[]

    def dump(self, obj: Any) -> bytes:
        return _fixed(obj, 23, 4, "i")


class _DatesDumper(psycopg.adapt.Dumper):
    format = psycopg.pq.Format.BINARY
    oid = 1182  # date[]

    def dump(self, obj: Any) -> bytes:
        return _fixed([None if d is None else d.toordinal() - _EPOCH for d in obj], 1082, 4, "i")


class _BoolsDumper(psycopg.adapt.Dumper):
    format = psycopg.pq.Format.BINARY
    oid = 1000  # bool[]

    def dump(self, obj: Any) -> bytes:
        return _fixed(obj, 16, 1, "b")


class _TextsDumper(psycopg.adapt.Dumper):
    format = psycopg.pq.Format.BINARY
    oid = 1009  # text[]

    def dump(self, obj: Any) -> bytes:
        if not obj:
            return struct.pack("!iiI", 0, 0, 25)
        pack = _LENGTH.pack
        parts = [_NULL if v is None else pack(len(b := v.encode())) + b for v in obj]
        return _HEAD.pack(1, 1 if None in obj else 0, 25, len(obj), 1) + b"".join(parts)


class _TextLiteralDumper(psycopg.adapt.Dumper):
    format = psycopg.pq.Format.TEXT
    oid = 1009  # text[]

    def dump(self, obj: Any) -> bytes:
        return str.encode(obj)


for _cls, _dumper in (
    (_Int8s, _Int8sDumper),
    (_Int4s, _Int4sDumper),
    (_Dates, _DatesDumper),
    (_Bools, _BoolsDumper),
    (_Texts, _TextsDumper),
    (_TextLiteral, _TextLiteralDumper),
):
    psycopg.adapters.register_dumper(_cls, _dumper)

_TYPED: dict[str, type[list[Any]]] = {"BIGINT": _Int8s, "INTEGER": _Int4s, "DATE": _Dates, "BOOLEAN": _Bools}


def _texts(values: list[Any]) -> Any:
    if values and None not in values:
        together = "".join(values)
        if '"' not in together and "\\" not in together:
            return _TextLiteral('{"' + '","'.join(values) + '"}')
    return _Texts(values)


def _array(table: Table, name: str, dialect: Dialect, values: list[Any]) -> Any:
    """`values` as the array parameter of column `name`, typed by the column's SQL type."""
    sql_type = _sql_type(table, name, dialect)
    if sql_type.startswith("VARCHAR") or sql_type in ("TEXT", "JSON"):
        return _texts(values)
    return _TYPED.get(sql_type, _Array)(values)


def _unnest(table: Table, dialect: Dialect, columns: Sequence[str]) -> str:
    """`unnest(%(c0)s::T0[], %(c1)s::T1[], …) AS v("a", "b", …)`: one array parameter per column."""
    arrays = ", ".join(
        f"CAST(%(c{i})s AS {_sql_type(table, name, dialect)}[])" for i, name in enumerate(columns)
    )
    names = ", ".join(f'"{c}"' for c in columns)
    return f"unnest({arrays}) AS v({names})"


def _arrays(
    table: Table, dialect: Dialect, rows: Sequence[Row], columns: Sequence[str], skip: Collection[str] = ()
) -> dict[str, list[Any]]:
    """The parameters of `_unnest`: each column's values, bind-processed (but the `skip` columns)."""
    params: dict[str, list[Any]] = {}
    for i, name in enumerate(columns):
        values = [row[name] for row in rows]
        if name not in skip:
            values = _processed(table, name, dialect, values)
        params[f"c{i}"] = _array(table, name, dialect, values)
    return params


def _processed(table: Table, name: str, dialect: Dialect, values: list[Any]) -> list[Any]:
    """`values` of column `name` bind-processed, each as SQLAlchemy would (enums to names, UTC
    timestamps…)."""
    proc = _processor(table, name, dialect)
    return values if proc is None else [None if v is None else proc(v) for v in values]


def update_rows(
    session: Session, table: Table, rows: Sequence[Row], *, key: str | Sequence[str] = "id"
) -> None:
    """Set each row's columns (all rows have the same keys) on the stored row with the same `key`
    (a column, or several)."""
    if not rows:
        return
    keys = [key] if isinstance(key, str) else list(key)
    columns = [c for c in rows[0] if c not in keys]
    if not is_postgresql(session):
        stmt = (
            update(table)
            .where(*(table.c[k] == bindparam(f"_k_{k}") for k in keys))
            .values({c: bindparam(f"_v_{c}") for c in columns})
        )
        session.execute(
            stmt,
            [{**{f"_k_{k}": r[k] for k in keys}, **{f"_v_{c}": r[c] for c in columns}} for r in rows],
        )
        return
    _dispatch(session, _update_job(session, table, rows, keys, columns))


def _update_job(
    session: Session, table: Table, rows: Sequence[Row], keys: Sequence[str], columns: Sequence[str]
) -> _Job:
    dialect = _dialect(session)

    def build() -> str:
        sets = ", ".join(f'"{c}" = v."{c}"' for c in columns)
        source = _unnest(table, dialect, [*keys, *columns])
        on = " AND ".join(f't."{k}" = v."{k}"' for k in keys)
        # the first key once more as an array, so that the stored rows are found through an index
        # whatever the planner's statistics make of the table's size
        first = f"CAST(%(c0)s AS {_sql_type(table, keys[0], dialect)}[])"
        return (
            f'UPDATE "{table.name}" AS t SET {sets} FROM {source} WHERE t."{keys[0]}" = ANY({first}) AND {on}'
        )

    sql = _sql(("update", table.name, tuple(keys), *columns), build)
    return _Job(sql, _arrays(table, dialect, rows, [*keys, *columns]))


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
    job = _insert_returning_job(session, table, rows, columns, returning)
    pipe = _pipeline_of(session)
    if pipe is None:
        return job(_driver(session))
    cur = pipe.send(job)
    pipe.pause()
    return job.rows(cur)


def _insert_returning_job(
    session: Session, table: Table, rows: Sequence[Row], columns: Sequence[str], returning: Sequence[str]
) -> _Job:
    dialect = _dialect(session)

    def build() -> str:
        names = ", ".join(f'"{c}"' for c in columns)
        returned = ", ".join(f'"{c}"' for c in returning)
        return (
            f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM {_unnest(table, dialect, columns)} '
            f"ON CONFLICT DO NOTHING RETURNING {returned}"
        )

    sql = _sql(("insert_returning", table.name, tuple(columns), tuple(returning)), build)
    return _Job(sql, _arrays(table, dialect, rows, columns), fetch=True)


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
    _dispatch(session, _upsert_job(session, table, keys, figures, rows))


def _upsert_job(
    session: Session, table: Table, keys: Sequence[str], figures: Sequence[str], rows: Sequence[Row]
) -> _Job:
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

    sql = _sql(("upsert_add", table.name, tuple(keys), tuple(figures)), build)
    return _Job(sql, _arrays(table, dialect, rows, columns))


def one_of(session: Session, table: Table, name: str, values: Iterable[Any]) -> ColumnElement[bool]:
    """`table`'s column `name` IN (values); on PostgreSQL `= ANY(:array)`, one parameter however many
    values (a statement with thousands of parameters costs more to build and parse than to run)."""
    values = list(values)
    column = table.c[name]
    if is_postgresql(session):
        dialect = _dialect(session)
        array = _array(table, name, dialect, _processed(table, name, dialect, values))
        # bound untyped, so that SQLAlchemy hands the array to the driver as it is, and cast in SQL
        return column == any_(cast(bindparam(None, array, type_=NullType()), postgresql.ARRAY(column.type)))
    return column.in_(values)


def select_matching(
    session: Session,
    table: Table,
    keys: Sequence[str],
    rows: Sequence[Row],
    columns: Sequence[str],
    *,
    lock: bool = False,
) -> list[tuple[Any, ...]]:
    """The `columns` of the stored rows whose `keys` equal those of one of `rows`; with `lock`, locked
    for update in key order (on PostgreSQL; SQLite has one writer at a time)."""
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
        sql = f'SELECT {names} FROM "{table.name}" AS t JOIN {_unnest(table, dialect, keys)} ON {on}'
        if lock:
            order = ", ".join(f't."{k}"' for k in keys)
            sql += f" ORDER BY {order} FOR UPDATE OF t"
        return sql

    sql = _sql(("select_matching", table.name, tuple(keys), tuple(columns), lock), build)
    return _run(session, sql, _arrays(table, dialect, rows, keys), fetch=True)


# --- writing while the caller goes on -------------------------------------------------------------------


class _Pipeline:
    """The statements of a `pipeline` block, sent to PostgreSQL without waiting for them.

    Each statement is prepared when it is queued (rows read, parameters converted), so the caller may
    change its objects afterwards. Anything else that uses the connection meanwhile — a query through the
    session, a read of this module — first waits for the statements queued so far (`pause`), so it sees
    them; pipelining resumes at the next statement queued. A failed statement raises, as SQLAlchemy
    would raise it, at the latest when the block ends; the statements after it did not run."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._ids: dict[str, deque[int]] = {}
        self._conn: psycopg.Connection[Any] | None = None
        self._pipeline: AbstractContextManager[psycopg.Pipeline] | None = None

    def reserve_ids(self, table: Table, n: int) -> None:
        self._ids.setdefault(table.name, deque()).extend(_next_ids(self.session, table, n))

    def take_ids(self, table: Table, n: int) -> list[int]:
        """`n` new ids of `table`: reserved ones first, the rest drawn now."""
        pool = self._ids.setdefault(table.name, deque())
        if len(pool) < n:
            pool.extend(_next_ids(self.session, table, n - len(pool)))
        return [pool.popleft() for _ in range(n)]

    def pause(self) -> None:
        """Wait for the statements queued so far and leave pipeline mode; raise the first failure."""
        if self._pipeline is None:
            return
        pipeline, self._pipeline = self._pipeline, None
        assert self._conn is not None
        _PIPELINES.pop(id(self._conn), None)
        try:
            pipeline.__exit__(None, None, None)
        except psycopg.Error as exc:
            raise DBAPIError.instance("(pipelined statements)", None, exc, psycopg.Error) from exc

    def send(self, job: _Job) -> psycopg.Cursor[Any]:
        if self._pipeline is None:
            self._conn = _driver(self.session)
            self._pipeline = self._conn.pipeline()
            self._pipeline.__enter__()
            _PIPELINES[id(self._conn)] = self
        assert self._conn is not None
        try:
            return job.send(self._conn)
        except DBAPIError as exc:
            # the failure may be an earlier statement's, whose result came in while this one was
            # sent: leaving pipeline mode then meets this statement aborted, which is not the news
            try:
                self.pause()
            except DBAPIError as later:
                if isinstance(exc.orig, psycopg.errors.PipelineAborted):
                    raise later from exc
            raise exc


_SESSION_KEY = "loanfund.bulk.pipeline"


def _pipeline_of(session: Session) -> _Pipeline | None:
    pipe: _Pipeline | None = session.info.get(_SESSION_KEY)
    return pipe


@contextmanager
def pipeline(session: Session) -> Iterator[None]:
    """Within the block, the inserts and updates of this module on `session` are queued in psycopg's
    pipeline mode instead of waiting for each (on PostgreSQL; elsewhere they run at once as always). A
    queued statement's failure is raised, as SQLAlchemy would raise it, at the latest when the block
    ends; a failure of the block's own code wins over a queued one (the transaction is rolled back
    anyway)."""
    if not is_postgresql(session) or _pipeline_of(session) is not None:
        yield
        return
    pipe = _Pipeline(session)
    session.info[_SESSION_KEY] = pipe
    try:
        yield
    except DBAPIError:
        # the caller's failure may only be its query in the transaction a queued statement aborted:
        # the statement's failure is the one to report
        session.info.pop(_SESSION_KEY, None)
        pipe.pause()
        raise
    except BaseException:
        session.info.pop(_SESSION_KEY, None)
        try:
            pipe.pause()
        except DBAPIError:
            pass  # the caller's own exception goes on; the transaction is rolled back anyway
        raise
    session.info.pop(_SESSION_KEY, None)
    pipe.pause()


# the pipeline that has a connection in pipeline mode, by connection: whoever else uses the connection
# pauses it first
_PIPELINES: dict[int, _Pipeline] = {}


def _pause_writer(conn: Any) -> None:
    pipe = _PIPELINES.get(id(conn))
    if pipe is not None:
        pipe.pause()


@event.listens_for(Engine, "before_cursor_execute")
def _before_execute(conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
    _pause_writer(conn.connection.driver_connection)


__all__ = [
    "insert_documents",
    "insert_returning",
    "insert_rows",
    "is_postgresql",
    "one_of",
    "pipeline",
    "reserve_ids",
    "select_matching",
    "update_rows",
    "upsert_add",
]
