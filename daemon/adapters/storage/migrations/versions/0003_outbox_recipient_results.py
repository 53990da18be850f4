"""outbox: what the relay answered for each recipient

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 00:00:00

A relay may accept a mail for some recipients and refuse it for others. The
row keeps each answer, so a recipient refused for good is reported once and
one refused for now is retried alone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rcpt_results", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("rcpt_results")
