"""Alembic environment: uses the engine spocd hands over, never an ini file.

On PostgreSQL the migration runs under an advisory lock, so instances that
start together on a fresh database migrate it once, one after the other.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from daemon.adapters.storage.models import METADATA

MIGRATION_LOCK = 0x5370_6F63_644D_6967  # "SpocdMig"

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=METADATA,
        render_as_batch=engine.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()
    connection.commit()
