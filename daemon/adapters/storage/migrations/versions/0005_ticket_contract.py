"""ticket contract

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 00:00:00

`tickets.contract`: the id of the client contract a ticket opened under
(SPEC §7), null for none. The SLA table it opened under is kept in the
ticket's `extra` (no column: old tickets read the current rules).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("contract", sa.String(length=200), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE (SQLite 3.35+): a batch copy of `tickets` would trip
    # the foreign keys of the rows that point at it.
    op.drop_column("tickets", "contract")
