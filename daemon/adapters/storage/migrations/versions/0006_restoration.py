"""restoration: workaround moment and restoration deadline on tickets

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 21:30:00

SPEC §8: `restored_at` is when a workaround brought the service back (the
first one; later ones are events only); `restoration_due` is the deadline of
the SLA row's `restoration` target (its `resolution` when the row has none).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from daemon.adapters.storage import models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE (SQLite has had ADD and DROP COLUMN since 3.35): a
    # batch copy of `tickets` would trip the foreign keys pointing at it.
    op.add_column(
        "tickets", sa.Column("restoration_due", models.UTCDateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "tickets", sa.Column("restored_at", models.UTCDateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("tickets", "restored_at")
    op.drop_column("tickets", "restoration_due")
