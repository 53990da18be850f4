"""The database schema as SQLAlchemy Core tables.

Core, not ORM classes: nothing here maps rows to objects (the repositories
write and read plain rows), and importing the ORM cost every command, the
batch ingest included, a tenth of a second.

Migrations in `migrations/versions` create exactly this; a test compares them.
Times are stored as UTC and come back timezone-aware (`UTCDateTime`), so the
same code runs on SQLite (no native time zones) and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite rowid aliases need INTEGER
Blob = LargeBinary()


METADATA = MetaData()


#: Small named values: the Message-ID signing key, instance facts.
SETTINGS = Table(
    "settings",
    METADATA,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

#: The inbound queue: every accepted raw message, kept for good.
INBOUND = Table(
    "inbound",
    METADATA,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source_key", String(400), unique=True, nullable=True),
    Column("intake", String(16), nullable=False),
    Column("escalation", Boolean, default=False, nullable=False),
    Column("mailbox", String(200), nullable=True),
    Column("peer", String(200), nullable=True),
    Column("envelope_from", String(998), nullable=True),
    Column("envelope_to", JSON, default=list, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("raw", Blob, nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("state", String(16), default="queued", nullable=False),
    Column("attempts", Integer, default=0, nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("stage", String(40), nullable=True),
    Column("reason", Text, nullable=True),
    Column("outcome", String(40), nullable=True),
    Column("processed_at", UTCDateTime(), nullable=True),
    Column("ticket_id", Id, nullable=True),
    Column("message_id", String(998), nullable=True),
    Index("ix_inbound_state", "state", "id"),
)

TICKETS = Table(
    "tickets",
    METADATA,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("subject", Text, nullable=False),
    Column("requester", String(320), nullable=False),
    Column("cc", JSON, default=list, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("escalated_by", String(320), nullable=True),
    Column("external_ref", String(200), nullable=True),
    Column("status", String(16), nullable=False),
    Column("impact", String(8), nullable=False),
    Column("urgency", String(8), nullable=False),
    Column("priority", String(4), nullable=False),
    Column("priority_explicit", Boolean, default=False, nullable=False),
    Column("category", String(200), nullable=True),
    Column("group_name", String(200), nullable=True),
    Column("assignee", String(320), nullable=True),
    Column("language", String(8), nullable=False),
    Column("tags", JSON, default=list, nullable=False),
    Column("rules_version", String(40), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("first_response_due", UTCDateTime(), nullable=True),
    Column("resolution_due", UTCDateTime(), nullable=True),
    Column("first_responded_at", UTCDateTime(), nullable=True),
    Column("resolved_at", UTCDateTime(), nullable=True),
    Column("closed_at", UTCDateTime(), nullable=True),
    Column("restoration_due", UTCDateTime(), nullable=True),
    Column("restored_at", UTCDateTime(), nullable=True),
    Column("paused_at", UTCDateTime(), nullable=True),
    Column("paused_seconds", Float, default=0.0, nullable=False),
    Column("escalation_level", Integer, default=0, nullable=False),
    Column("closure", String(16), nullable=True),
    Column("resolution_code", String(100), nullable=True),
    Column("resolution_note", Text, nullable=True),
    Column("merged_into", Id, nullable=True),
    Column("linked_to", Id, nullable=True),
    Column("parent", Id, nullable=True),
    Column("last_public_at", UTCDateTime(), nullable=True),
    Column("extra", JSON, default=dict, nullable=False),
    Column("contract", String(200), nullable=True),
    Index("ix_tickets_status", "status"),
    Index("ix_tickets_requester", "requester"),
    Index("ix_tickets_created", "created_at"),
    Index("ix_tickets_parent", "parent"),
)

#: A message on a ticket: inbound (raw in `inbound`) or outbound.
MESSAGES = Table(
    "messages",
    METADATA,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False),
    Column("direction", String(3), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("sender", String(998), nullable=False),
    Column("recipients", JSON, default=list, nullable=False),
    Column("subject", Text, nullable=False),
    Column("message_id", String(998), nullable=False),
    Column("in_reply_to", String(998), nullable=True),
    Column("refs", JSON, default=list, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("body", Text, default="", nullable=False),
    Column("html", Text, nullable=True),
    Column("internal", Boolean, default=False, nullable=False),
    Column("inbound_id", Id, ForeignKey("inbound.id"), nullable=True),
    Column("outbox_id", Id, nullable=True),
    Column("headers", JSON, default=dict, nullable=False),
    Index("ix_messages_ticket", "ticket_id", "id"),
    Index("ix_messages_message_id", "message_id"),
)

ATTACHMENTS = Table(
    "attachments",
    METADATA,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_row_id", Id, ForeignKey("messages.id"), index=True, nullable=False),
    Column("filename", String(255), nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("content", Blob, nullable=True),
)

#: The audit trail: every change, who made it, when, through what.
EVENTS = Table(
    "events",
    METADATA,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(320), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("type", String(64), nullable=False),
    Column("detail", JSON, default=dict, nullable=False),
    Index("ix_events_ticket", "ticket_id", "id"),
)

#: Mail to send, written in the transaction of the change that causes it.
OUTBOX = Table(
    "outbox",
    METADATA,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ticket_id", Id, nullable=True),
    Column("kind", String(32), nullable=False),
    Column("message_id", String(998), unique=True, nullable=False),
    Column("recipients", JSON, nullable=False),
    Column("primary_rcpt", String(320), nullable=False),
    Column("automatic", Boolean, default=True, nullable=False),
    Column("raw", Blob, nullable=False),
    Column("state", String(16), default="pending", nullable=False),
    Column("attempts", Integer, default=0, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("leased_until", UTCDateTime(), nullable=True),  # in flight at a sender until then
    Column("sent_at", UTCDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    # What the relay answered, by recipient: {"a@b": {"state": "sent"|"refused"|
    # "deferred", "answer": "550 ..."}}; a recipient sent or refused is not sent again.
    Column("rcpt_results", JSON, nullable=True),
    Index("ix_outbox_due", "state", "next_attempt_at"),
    Index("ix_outbox_rcpt", "primary_rcpt", "created_at"),
)

#: A stored deadline for time-driven work (SLA steps, updates, reminders).
#: Sweeps ask for rows with `due_at <= now` and `done_at IS NULL`, act, and set
#: `done_at` in the same transaction, so each fires once across restarts.
TIMERS = Table(
    "timers",
    METADATA,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("key", String(100), default="", nullable=False),
    Column("due_at", UTCDateTime(), nullable=False),
    Column("done_at", UTCDateTime(), nullable=True),
    Column("detail", JSON, default=dict, nullable=False),
    UniqueConstraint("ticket_id", "kind", "key", name="uq_timers_ticket_kind_key"),
    Index("ix_timers_due", "done_at", "due_at"),
)

#: What we know of a correspondent: a failing address pauses automatic mail.
ADDRESSES = Table(
    "addresses",
    METADATA,
    Column("address", String(320), primary_key=True),
    Column("failing_since", UTCDateTime(), nullable=True),
    Column("failure", Text, nullable=True),
)

#: IMAP progress and health per mailbox and folder, keyed by UIDVALIDITY.
MAILBOX_STATE = Table(
    "mailbox_state",
    METADATA,
    Column("mailbox", String(200), primary_key=True),
    Column("folder", String(400), primary_key=True),
    Column("uidvalidity", BigInteger, nullable=True),
    Column("last_uid", BigInteger, default=0, nullable=False),
    Column("connected", Boolean, default=False, nullable=False),
    Column("last_success_at", UTCDateTime(), nullable=True),
    Column("last_error_at", UTCDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("taken", BigInteger, default=0, nullable=False),
    Column("failed", BigInteger, default=0, nullable=False),
    Column("poll_seconds", Integer, default=30, nullable=False),
)

#: A message on an IMAP server the intake could not finish: a UID the
#: server did not deliver (`misses`), a copy made but the original not
#: deleted (`copied_to`), a move that failed. Kept by source key until the
#: message is gone from the folder; `kind` says what `spocd status` shows.
IMAP_NOTES = Table(
    "imap_notes",
    METADATA,
    Column("source_key", String(400), primary_key=True),
    Column("mailbox", String(200), nullable=False),
    Column("folder", String(400), nullable=False),
    Column("misses", Integer, default=0, nullable=False),
    Column("copied_to", String(400), nullable=True),
    Column("kind", String(16), nullable=True),  # "untaken" | "unmoved"
    Column("problem", Text, nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_imap_notes_mailbox", "mailbox", "folder"),
)

#: Which queued item holds the message with this (account, folder,
#: Message-ID): a UIDVALIDITY change renames every UID, not the message.
IMAP_IDENTITIES = Table(
    "imap_identities",
    METADATA,
    Column("identity", String(100), primary_key=True),
    Column("inbound_id", Id, nullable=False),
)
