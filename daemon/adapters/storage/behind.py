"""Row writes held back until their rows are read, or the group commits.

A group commit runs a few hundred messages in one transaction, each in a
savepoint; each message adds a handful of events and marks its queue row
done, and nothing later in the group reads those rows back. Held here and
written with one `executemany` per table and shape, they cost the driver
one call instead of one per row. Rows are encoded when they are held (a
value that cannot be written fails the message that gave it, in its own
savepoint), written in the order they were given (so ids come out as the
row-by-row path gives them), and a savepoint rolled back drops what it
held and takes back what it wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Table

from daemon.adapters.storage import direct


class WriteBehind:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._rows: list[tuple[Table, direct.Prepared]] = []
        self._written = 0  # rows[:written] are in the database

    def insert(self, table: Table, values: Mapping[str, Any]) -> None:
        self._rows.append((table, direct.prepare_insert(self.conn, table, values)))

    def update(self, table: Table, pk: int, values: Mapping[str, Any]) -> None:
        self._rows.append((table, direct.prepare_update(self.conn, table, pk, values)))

    def mark(self) -> tuple[int, int]:
        """Where a savepoint starts."""
        return len(self._rows), self._written

    def undo(self, mark: tuple[int, int]) -> None:
        """The savepoint begun at `mark` was rolled back: its rows go, and rows
        written inside it (the database undid them) are held again."""
        held, written = mark
        del self._rows[held:]
        self._written = min(self._written, written)

    def flush(self) -> None:
        """Write every held row: per table, consecutive rows of one statement
        in one executemany."""
        pending = self._rows[self._written :]
        if not pending:
            return
        self._written = len(self._rows)
        by_table: dict[str, list[direct.Prepared]] = {}
        for table, row in pending:
            by_table.setdefault(table.name, []).append(row)
        for rows in by_table.values():
            run: list[direct.Prepared] = []
            for row in rows:
                if run and row.sql != run[0].sql:
                    direct.run_prepared(self.conn, run)
                    run = []
                run.append(row)
            direct.run_prepared(self.conn, run)
