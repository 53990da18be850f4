"""What the repositories share: a base over one
connection; repositories never commit.

Written with SQLAlchemy Core statements against the model tables: the
pipeline runs several statements per message, and Core keeps that cheap.
Rows are mapped to the domain types of `daemon.core.domain` at this edge.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from daemon.adapters.storage import direct
from daemon.adapters.storage.behind import WriteBehind


class Repo:
    """A repository over one connection (the transaction's)."""

    def __init__(self, conn: Connection, behind: WriteBehind | None = None) -> None:
        self.conn = conn
        self.locking = conn.dialect.name == "postgresql"
        self.behind = behind  # the transaction's held row writes, if it holds any

    def _settle(self) -> None:
        """Write held rows before reading or writing this repository's table
        another way (a repository that holds rows calls it)."""
        if self.behind is not None:
            self.behind.flush()

    def _insert(self, table: Any, values: dict[str, Any]) -> int:
        return direct.insert_row(self.conn, table, values)

    def _update(self, table: Any, pk: int, values: dict[str, Any]) -> int:
        return direct.update_row(self.conn, table, pk, values)

    def _upsert(self, table: Any, values: dict[str, Any]) -> Any:
        """`INSERT ... ON CONFLICT` of this database: for rows that instances
        may create at the same moment (add `.on_conflict_do_update(...)` or
        `.on_conflict_do_nothing()`), where a read then an INSERT fails on the
        unique key for the second of them."""
        # Imported here, each only on its own database: the PostgreSQL dialect
        # costs a SQLite desk 25-35 ms to import, and these rows are rare.
        if self.locking:
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table).values(values)

    def _locked(self, stmt: Any) -> Any:
        """FOR UPDATE SKIP LOCKED on PostgreSQL, so instances never take the
        same row; SQLite's BEGIN IMMEDIATE already serialises writers."""
        return stmt.with_for_update(skip_locked=True) if self.locking else stmt
