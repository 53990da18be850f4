"""ticket parent: major incidents

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 00:00:00

`tickets.parent` names the major incident a ticket is part of (SPEC §8);
the index finds a parent's children.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("parent", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
        )
        batch_op.create_index("ix_tickets_parent", ["parent"], unique=False)


def downgrade() -> None:
    # SQLite drops the column in place (3.35+): recreating `tickets` would
    # trip the foreign keys of its messages, events and timers.
    with op.batch_alter_table("tickets", schema=None, recreate="never") as batch_op:
        batch_op.drop_index("ix_tickets_parent")
        batch_op.drop_column("parent")
