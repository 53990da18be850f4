"""imap notes and message identities

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 00:00:00

`imap_notes` remembers messages the intake could not finish (a UID not
delivered, a copy whose original could not be deleted), so a retry neither
copies again nor forgets them; `imap_identities` maps (account, folder,
Message-ID) to the queued item, so a changing UIDVALIDITY stores nothing twice.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from daemon.adapters.storage import models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imap_notes",
        sa.Column("source_key", sa.String(length=400), nullable=False),
        sa.Column("mailbox", sa.String(length=200), nullable=False),
        sa.Column("folder", sa.String(length=400), nullable=False),
        sa.Column("misses", sa.Integer(), nullable=False),
        sa.Column("copied_to", sa.String(length=400), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("updated_at", models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source_key"),
    )
    with op.batch_alter_table("imap_notes", schema=None) as batch_op:
        batch_op.create_index("ix_imap_notes_mailbox", ["mailbox", "folder"], unique=False)
    op.create_table(
        "imap_identities",
        sa.Column("identity", sa.String(length=100), nullable=False),
        sa.Column(
            "inbound_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.PrimaryKeyConstraint("identity"),
    )


def downgrade() -> None:
    op.drop_table("imap_identities")
    with op.batch_alter_table("imap_notes", schema=None) as batch_op:
        batch_op.drop_index("ix_imap_notes_mailbox")
    op.drop_table("imap_notes")
