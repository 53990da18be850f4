"""Engines for SQLite (embedded default) and PostgreSQL (psycopg 3).

SQLite runs in WAL mode with `synchronous=FULL`, so a commit is on disk before
SMTP answers 250, and a busy timeout, so the daemon and a CLI command can share
the file. Writes start with BEGIN IMMEDIATE: a write transaction takes the lock
up front instead of failing half-way when two writers meet.

The busy timeout (`[database] busy_timeout_ms`) bounds how long a write waits
for a lock someone else holds; on PostgreSQL the same bound is the session's
`lock_timeout`. Past it the write fails, so SMTP answers 451 instead of
keeping the sender waiting until its own timeout.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from daemon.config.files import create_private, private_dirs

SQLITE_BUSY_MS = 30_000


def make_engine(url: str, *, pool_size: int = 5, busy_timeout_ms: int = SQLITE_BUSY_MS) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            private_dirs(Path(database).parent)
            create_private(database)  # 0600 before SQLite makes it (and its -wal) 0644
        engine = create_engine(
            parsed, connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False}
        )
        _sqlite_setup(engine, busy_timeout_ms)
        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=10,
        pool_pre_ping=True,
        connect_args={"options": f"-c lock_timeout={int(busy_timeout_ms)}"},
    )


def bind_as_is() -> None:
    """Tell the sqlite3 driver that None, bool and bytes need no adapting.

    Every parameter that is not an int, float or str (None, bool, bytes) is
    offered to the driver's adapters; with none registered it asks the
    protocol class for `__adapt__`, which formats and discards an
    AttributeError every time: 39,000 of them in a 600-message ingest, 0.7 %
    of its main process's instructions. These adapters give back what the
    driver binds without them (None, the int a bool is, the bytes themselves),
    in C, so what is written is unchanged. The registry is the sqlite3
    module's, for the whole process; registering again changes nothing.
    """
    sqlite3.register_adapter(type(None), {}.get)  # {}.get(None) is None
    sqlite3.register_adapter(bool, int)
    sqlite3.register_adapter(bytes, bytes)  # bytes(b) is b for a bytes object


def _sqlite_setup(engine: Engine, busy_timeout_ms: int) -> None:
    bind_as_is()

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Statement journals (one per savepoint: each message of a group
        # commit has one) in memory: on disk they cost a write per page.
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        mode = "DEFERRED" if conn.get_execution_options().get("readonly") else "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")
