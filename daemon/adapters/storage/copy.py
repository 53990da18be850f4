"""`spocd db copy SRC DST`: move every ticket, message and event to another
database (SQLite to PostgreSQL, typically), then verify the counts.

The destination is brought to the newest schema and must be empty. Rows are
copied table by table in dependency order and in batches, so memory stays
bounded; PostgreSQL's id sequences are then moved past the copied ids.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, func, select, text

from daemon.adapters.storage import migrate
from daemon.adapters.storage.models import METADATA

BATCH = 500


class CopyError(Exception):
    pass


def copy_database(
    source: Engine, target: Engine, progress: Callable[[str, int], None] = lambda table, n: None
) -> dict[str, int]:
    """Copy all rows; returns the row count per table (verified equal)."""
    migrate.ensure_head(source)
    migrate.ensure_head(target)
    tables = [t for t in METADATA.sorted_tables]
    with target.connect() as conn:
        busy = [
            t.name for t in tables if conn.execute(select(func.count()).select_from(t)).scalar_one()
        ]
    if busy:
        raise CopyError(f"the destination is not empty ({', '.join(busy)}); refusing to mix")
    counts: dict[str, int] = {}
    with source.connect() as src, target.begin() as dst:
        for table in tables:
            copied = 0
            result = src.execution_options(yield_per=BATCH).execute(select(table))
            for rows in result.partitions(BATCH):
                dst.execute(table.insert(), [dict(row._mapping) for row in rows])
                copied += len(rows)
                progress(table.name, copied)
            counts[table.name] = copied
        if target.dialect.name == "postgresql":
            for table in tables:
                if "id" in table.c and table.c.id.autoincrement:
                    dst.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                            f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"
                        )
                    )
    with target.connect() as conn:
        for table in tables:
            found = conn.execute(select(func.count()).select_from(table)).scalar_one()
            if found != counts[table.name]:
                raise CopyError(
                    f"{table.name}: copied {counts[table.name]} rows but the "
                    f"destination has {found}"
                )
    return counts
