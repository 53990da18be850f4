"""The pipeline's hot statements, run on the driver's cursor.

A message runs a dozen statements; through `Connection.execute` most of each
one's time goes to SQLAlchemy's per-call work (cache keys, execution
contexts, result objects), not to the database. Here each statement (or
each (table, columns) shape of a row write) is compiled by SQLAlchemy once
per dialect, with its parameters' own bind processors, and then run straight
on the DBAPI cursor of the same connection, inside the same transaction and
savepoints. Driver errors are raised as SQLAlchemy's, so callers catch what
they caught before. Rows come back as the driver gives them: `fetch` is only
for results that need no conversion (numbers, text).
"""

from __future__ import annotations

import functools
import json
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Connection, Table, bindparam, insert, update
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

from daemon.adapters.storage.models import UTCDateTime


@dataclass(frozen=True, slots=True)
class _Shape:
    sql: str
    names: tuple[str, ...]  # parameter order (positional styles) or keys
    positional: bool
    processors: Mapping[str, Callable[[Any], Any]]
    defaults: Mapping[str, Callable[[], Any]]  # Python-side defaults of columns not given
    returning: bool
    #: Positional styles: the values in parameter order, taken in C (a row of
    #: the messages table has 15), and where each conversion applies in them.
    ordered: Callable[[Mapping[str, Any]], tuple[Any, ...]] = field(init=False)
    converting: tuple[tuple[int, Callable[[Any], Any]], ...] = field(init=False)

    def __post_init__(self) -> None:
        # A parameter used twice in a statement is in `names` twice: each converted.
        process = self.processors
        converting = tuple((i, process[n]) for i, n in enumerate(self.names) if n in process)
        object.__setattr__(self, "ordered", _ordered(self.names))
        object.__setattr__(self, "converting", converting)


def _ordered(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """The values of `names` from a row, as a tuple (itemgetter gives a
    single name's value bare)."""
    if len(names) > 1:
        return itemgetter(*names)
    if names:
        only = names[0]
        return lambda row: (row[only],)
    return lambda row: ()


_SHAPES: dict[tuple[str, str, str, tuple[str, ...]], _Shape] = {}
#: Per (dialect, statement): the statement (its id is the key only while it
#: lives), its shape, and its result columns for `_reader`.
_STATEMENTS: dict[tuple[str, int], tuple[Any, _Shape, Sequence[Any]]] = {}


def insert_row(conn: Connection, table: Table, values: Mapping[str, Any]) -> int:
    """INSERT one row; its new primary key."""
    shape = _shape(conn.dialect, table, "insert", tuple(values))
    cursor = _run(conn, shape, values)
    try:
        if shape.returning:
            return int(cursor.fetchone()[0])
        return int(cursor.lastrowid)
    finally:
        cursor.close()


def update_row(conn: Connection, table: Table, pk: int, values: Mapping[str, Any]) -> int:
    """UPDATE the row with this primary key; the number of rows changed."""
    shape = _shape(conn.dialect, table, "update", tuple(values))
    cursor = _run(conn, shape, {**values, "_pk": pk})
    try:
        return int(cursor.rowcount)
    finally:
        cursor.close()


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT rows of one shape in one executemany."""
    if rows:
        shape = _shape(conn.dialect, table, "insert-many", tuple(rows[0]))
        params = [_params(shape, row) for row in rows]
        _execute(conn, shape.sql, params, many=True).close()


def execute(conn: Connection, stmt: Any, params: Mapping[str, Any]) -> int:
    """Run a prepared statement (a module constant); rows it changed."""
    cursor = _run(conn, _statement(conn.dialect, stmt), params)
    try:
        return int(cursor.rowcount)
    finally:
        cursor.close()


@dataclass(frozen=True, slots=True)
class Prepared:
    """One row write, encoded, waiting to run (see `behind`)."""

    sql: str
    params: Any


def prepare_insert(conn: Connection, table: Table, values: Mapping[str, Any]) -> Prepared:
    shape = _shape(conn.dialect, table, "insert-many", tuple(values))
    return Prepared(shape.sql, _params(shape, values))


def prepare_update(conn: Connection, table: Table, pk: int, values: Mapping[str, Any]) -> Prepared:
    shape = _shape(conn.dialect, table, "update", tuple(values))
    return Prepared(shape.sql, _params(shape, {**values, "_pk": pk}))


def run_prepared(conn: Connection, rows: Sequence[Prepared]) -> None:
    """Rows of one statement, in one executemany."""
    if len(rows) == 1:
        _execute(conn, rows[0].sql, rows[0].params).close()
    elif rows:
        _execute(conn, rows[0].sql, [row.params for row in rows], many=True).close()


def execute_many(conn: Connection, stmt: Any, params: Sequence[Mapping[str, Any]]) -> None:
    """Run a prepared statement once per parameter set, in one executemany."""
    if params:
        shape = _statement(conn.dialect, stmt)
        _execute(conn, shape.sql, [_params(shape, p) for p in params], many=True).close()


def fetch(conn: Connection, stmt: Any, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Run a prepared SELECT whose columns need no conversion; its rows."""
    cursor = _run(conn, _statement(conn.dialect, stmt), params)
    try:
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        cursor.close()


def rows(conn: Connection, stmt: Any, params: Mapping[str, Any]) -> list[Any]:
    """Run a prepared SELECT; its rows with SQLAlchemy's own result
    conversions (datetimes, JSON), read by column name like SQLAlchemy's."""
    shape = _statement(conn.dialect, stmt)
    cursor = _run(conn, shape, params)
    try:
        make = _reader(conn.dialect, stmt, cursor.description)
        return [make(row) for row in cursor.fetchall()]
    finally:
        cursor.close()


_READERS: dict[tuple[str, int, tuple[Any, ...]], tuple[Any, Callable[[Any], Any]]] = {}


def _reader(dialect: Dialect, stmt: Any, description: Any) -> Callable[[Any], Any]:
    """A row maker for this statement and the driver's column types: each
    column through its type's result processor (as SQLAlchemy would)."""
    codes = tuple(column[1] for column in description)
    key = (dialect.name, id(stmt), codes)
    found = _READERS.get(key)
    if found is None or found[0] is not stmt:
        _statement(dialect, stmt)  # compiled once, for its shape and its columns
        columns = _STATEMENTS[(dialect.name, id(stmt))][2]
        processors = [
            _result_processor(column.type, dialect, code)
            for column, code in zip(columns, codes, strict=True)
        ]
        row_type = namedtuple("Row", [column.keyname for column in columns], rename=True)  # type: ignore[misc]
        converting = [(i, p) for i, p in enumerate(processors) if p is not None]

        def make(raw: Any) -> Any:
            values = list(raw)
            for index, process in converting:
                values[index] = process(values[index])
            return row_type._make(values)

        found = _READERS[key] = (stmt, make)
    return found[1]


def _result_processor(type_: Any, dialect: Dialect, code: Any) -> Callable[[Any], Any] | None:
    """The type's own result processor; for our UTC datetimes on SQLite, the
    stored text read by C's `fromisoformat` instead of SQLAlchemy's regular
    expression and two wrappers (a ticket row has a dozen datetimes), and
    JSON by the C scanner (`_read_sqlite_json`)."""
    theirs = type_._cached_result_processor(dialect, code)
    if isinstance(type_, UTCDateTime) and dialect.name == "sqlite":
        return functools.partial(_read_sqlite_datetime, theirs)
    if isinstance(type_, JSON) and dialect.name == "sqlite" and theirs is not None:
        return functools.partial(_read_sqlite_json, theirs)
    return theirs  # type: ignore[no-any-return]


#: The scanner `json.loads` runs (the C one where there is one), with its defaults.
_SCAN = json.JSONDecoder().scan_once


def _read_sqlite_json(slow: Callable[[Any], Any], value: Any) -> Any:
    """A stored JSON text read by the scanner directly: `json.loads` runs two
    regular expressions and three Python frames around it for every value,
    and a message's rows hold nine. What the scanner does not take whole
    (surrounding space, an error, not text) is read as SQLAlchemy reads it,
    with its errors."""
    if type(value) is str:
        try:
            found, end = _SCAN(value, 0)
        except (StopIteration, ValueError):
            return slow(value)
        if end == len(value):
            return found
    return slow(value)


def _read_sqlite_datetime(
    slow: Callable[[Any], datetime | None], value: str | None
) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except (TypeError, ValueError):  # not the text this module and SQLAlchemy write
        return slow(value)


def statement(conn: Connection, sql: str) -> None:
    """A statement without parameters (SAVEPOINT and the like)."""
    _execute(conn, sql, ()).close()


def _params(shape: _Shape, values: Mapping[str, Any]) -> Any:
    row = values
    if shape.defaults:
        row = dict(values)
        for name, make in shape.defaults.items():
            if name not in row:
                row[name] = make()
    if shape.positional:
        if not shape.converting:
            return shape.ordered(row)
        ordered = list(shape.ordered(row))
        for index, process in shape.converting:
            ordered[index] = process(ordered[index])
        return ordered
    named = dict(row)
    for name, process in shape.processors.items():
        named[name] = process(named[name])
    return named


def _run(conn: Connection, shape: _Shape, values: Mapping[str, Any]) -> Any:
    return _execute(conn, shape.sql, _params(shape, values))


def _execute(conn: Connection, sql: str, params: Any, *, many: bool = False) -> Any:
    """The driver's cursor, the statement run on it; driver errors raised as
    SQLAlchemy's."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
    except conn.dialect.loaded_dbapi.Error as exc:
        cursor.close()
        raise DBAPIError.instance(
            sql, params, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
        ) from exc
    return cursor


def _statement(dialect: Dialect, stmt: Any) -> _Shape:
    found = _STATEMENTS.get((dialect.name, id(stmt)))
    if found is None or found[0] is not stmt:
        compiled = stmt.compile(dialect=dialect)
        processors = {}
        defaults: dict[str, Callable[[], Any]] = {}
        for name, bind in compiled.binds.items():
            if bind.expanding:
                raise ValueError(f"{name}: expanding parameters are not prepared")
            process = _processor(bind.type, dialect)
            if process is not None:
                processors[name] = process
            if not bind.required:
                defaults[name] = lambda value=bind.effective_value: value
        positional = bool(dialect.positional)
        names = tuple(compiled.positiontup or ()) if positional else tuple(compiled.binds)
        shape = _Shape(str(compiled), names, positional, processors, defaults, False)
        found = _STATEMENTS[(dialect.name, id(stmt))] = (stmt, shape, compiled._result_columns)
    return found[1]


def _shape(dialect: Dialect, table: Table, kind: str, keys: tuple[str, ...]) -> _Shape:
    cache_key = (dialect.name, table.name, kind, keys)
    shape = _SHAPES.get(cache_key)
    if shape is None:
        shape = _SHAPES[cache_key] = _compile(dialect, table, kind, keys)
    return shape


def _compile(dialect: Dialect, table: Table, kind: str, keys: tuple[str, ...]) -> _Shape:
    columns = {c.key: c for c in table.columns}
    defaults: dict[str, Callable[[], Any]] = {}
    if kind.startswith("insert"):
        for key, column in columns.items():
            if key in keys or column.default is None or column.primary_key:
                continue
            default: Any = column.default
            if default.is_scalar:
                defaults[key] = lambda value=default.arg: value
            elif default.is_callable:
                defaults[key] = lambda make=default.arg: make(None)
            else:
                raise ValueError(f"{table.name}.{key}: a default run by the database")
    written = (*keys, *defaults)
    binds = {k: bindparam(k, type_=columns[k].type) for k in written}
    returning = False
    if kind.startswith("insert"):
        stmt: Any = insert(table).values(binds)
        if kind == "insert" and dialect.name != "sqlite":  # SQLite gives lastrowid
            stmt = stmt.returning(table.c.id)
            returning = True
    else:
        stmt = update(table).where(table.c.id == bindparam("_pk")).values(binds)
    compiled = stmt.compile(dialect=dialect)
    processors = {}
    for key in written:
        process = _processor(columns[key].type, dialect)
        if process is not None:
            processors[key] = process
    positional = bool(dialect.positional)
    names = tuple(compiled.positiontup or ()) if positional else written
    return _Shape(str(compiled), names, positional, processors, defaults, returning)


def _processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """The type's own bind processor; for our UTC datetimes on SQLite, the
    same stored text (`2026-11-25 09:30:15.123456`) written by C's isoformat
    instead of SQLAlchemy's %-formatting: a message writes a dozen of them."""
    if isinstance(type_, UTCDateTime) and dialect.name == "sqlite":
        return _sqlite_datetime
    theirs = type_.dialect_impl(dialect).bind_processor(dialect)
    if (
        isinstance(type_, JSON)
        and dialect.name == "sqlite"
        and dialect._json_serializer is None  # type: ignore[attr-defined]
        and not type_.none_as_null
        and theirs is not None
    ):
        return functools.partial(_sqlite_json, theirs)
    return theirs  # type: ignore[no-any-return]


def _json_text() -> Callable[[Any], str]:
    """What `json.dumps` writes with its defaults, which is what SQLAlchemy's
    JSON type writes on SQLite. `JSONEncoder.encode` builds the standard
    library's C encoder anew for every value, half the time of a small one;
    here it is built once, with `encode`'s own arguments, and reused. Without
    the circular-reference markers (spocd's values are trees of data, and
    markers would be shared between threads): a cycle would end in
    RecursionError instead of ValueError. Where the C encoder is missing,
    `encode` itself."""
    encoder = json.JSONEncoder()
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return encoder.encode
    chunks = make(
        None,  # markers
        encoder.default,
        json.encoder.encode_basestring_ascii,
        None,  # indent
        encoder.key_separator,
        encoder.item_separator,
        encoder.sort_keys,
        encoder.skipkeys,
        encoder.allow_nan,
    )
    return lambda value: "".join(chunks(value, 0))


_JSON_TEXT = _json_text()


def _sqlite_json(theirs: Callable[[Any], Any], value: Any) -> Any:
    """A dict or list (every JSON value spocd writes but a few) encoded
    directly, an empty one not at all; anything else as SQLAlchemy does
    (None, its JSON.NULL, SQL NULL)."""
    kind = type(value)
    if kind is dict:
        return _JSON_TEXT(value) if value else "{}"
    if kind is list:
        return _JSON_TEXT(value) if value else "[]"
    return theirs(value)


#: The last datetime written and its text: most a message writes are the one
#: moment of its group commit (events, messages, outbox and queue rows), the
#: same object each time. One tuple, replaced whole, so threads share it safely.
_LAST_WRITTEN: tuple[datetime | None, str | None] = (None, None)


def _sqlite_datetime(value: datetime | None) -> str | None:
    global _LAST_WRITTEN
    if value is None:
        return None
    last = _LAST_WRITTEN
    if value is last[0]:
        return last[1]
    if value.tzinfo is UTC:  # most are: the clock's and the database's own
        text = value.isoformat(" ", "microseconds")[:-6]  # without "+00:00"
    elif value.tzinfo is None:
        raise ValueError("naive datetime given to the database")
    else:
        text = value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    _LAST_WRITTEN = (value, text)
    return text
