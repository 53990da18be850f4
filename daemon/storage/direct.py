"""The pipeline's row writes, run on the driver's cursor.

A message writes a dozen rows; through `Connection.execute` most of each
write's time goes to SQLAlchemy's per-call work (cache keys, execution
contexts, result objects), not to the database. Here each (table, columns)
shape is compiled by SQLAlchemy once per dialect, with the columns' own bind
processors, and then run straight on the DBAPI cursor of the same connection,
inside the same transaction and savepoints. Driver errors are raised as
SQLAlchemy's, so callers catch what they caught before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, update
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError


@dataclass(frozen=True, slots=True)
class _Shape:
    sql: str
    names: tuple[str, ...]  # parameter order (positional styles) or keys
    positional: bool
    processors: Mapping[str, Callable[[Any], Any]]
    defaults: Mapping[str, Callable[[], Any]]  # Python-side defaults of columns not given
    returning: bool


_SHAPES: dict[tuple[str, str, str, tuple[str, ...]], _Shape] = {}


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


def _run(conn: Connection, shape: _Shape, values: Mapping[str, Any]) -> Any:
    row = dict(values)
    for name, make in shape.defaults.items():
        row[name] = make()
    for name, process in shape.processors.items():
        row[name] = process(row[name])
    params: Any = tuple(row[n] for n in shape.names) if shape.positional else row
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(shape.sql, params)
    except conn.dialect.loaded_dbapi.Error as exc:
        cursor.close()
        raise DBAPIError.instance(
            shape.sql, params, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
        ) from exc
    return cursor


def _shape(dialect: Dialect, table: Table, kind: str, keys: tuple[str, ...]) -> _Shape:
    cache_key = (dialect.name, table.name, kind, keys)
    shape = _SHAPES.get(cache_key)
    if shape is None:
        shape = _SHAPES[cache_key] = _compile(dialect, table, kind, keys)
    return shape


def _compile(dialect: Dialect, table: Table, kind: str, keys: tuple[str, ...]) -> _Shape:
    columns = {c.key: c for c in table.columns}
    defaults: dict[str, Callable[[], Any]] = {}
    if kind == "insert":
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
    if kind == "insert":
        stmt: Any = insert(table).values(binds)
        if dialect.name != "sqlite":  # SQLite gives the key as lastrowid
            stmt = stmt.returning(table.c.id)
            returning = True
    else:
        stmt = update(table).where(table.c.id == bindparam("_pk")).values(binds)
    compiled = stmt.compile(dialect=dialect)
    processors = {}
    for key in written:
        process = columns[key].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors[key] = process
    positional = bool(dialect.positional)
    names = tuple(compiled.positiontup or ()) if positional else written
    return _Shape(str(compiled), names, positional, processors, defaults, returning)
