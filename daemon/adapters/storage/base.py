"""What the repositories share: the model tables and a base over one
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
from daemon.adapters.storage.models import (
    AddressRow,
    AttachmentRow,
    EventRow,
    InboundRow,
    MessageRow,
    OutboxRow,
    Setting,
    TicketRow,
    TimerRow,
)

INBOUND = InboundRow.__table__
TICKETS = TicketRow.__table__
MESSAGES = MessageRow.__table__
ATTACHMENTS = AttachmentRow.__table__
EVENTS = EventRow.__table__
OUTBOX = OutboxRow.__table__
TIMERS = TimerRow.__table__
SETTINGS = Setting.__table__
ADDRESSES = AddressRow.__table__


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

    def _locked(self, stmt: Any) -> Any:
        """FOR UPDATE SKIP LOCKED on PostgreSQL, so instances never take the
        same row; SQLite's BEGIN IMMEDIATE already serialises writers."""
        return stmt.with_for_update(skip_locked=True) if self.locking else stmt
