"""restoration: workaround moment and restoration deadline on tickets

Revision ID: 0006
Revises: 0004
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
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("restoration_due", models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("restored_at", models.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("restored_at")
        batch_op.drop_column("restoration_due")
