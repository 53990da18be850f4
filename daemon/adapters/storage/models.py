"""The database schema as SQLAlchemy 2 declarative models.

Migrations in `migrations/versions` create exactly this; a test compares them.
Times are stored as UTC and come back timezone-aware (`UTCDateTime`), so the
same code runs on SQLite (no native time zones) and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
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


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Setting(Base):
    """Small named values: the Message-ID signing key, instance facts."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class InboundRow(Base):
    """The inbound queue: every accepted raw message, kept for good."""

    __tablename__ = "inbound"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    source_key: Mapped[str | None] = mapped_column(String(400), unique=True)
    intake: Mapped[str] = mapped_column(String(16))
    escalation: Mapped[bool] = mapped_column(Boolean, default=False)
    mailbox: Mapped[str | None] = mapped_column(String(200))
    peer: Mapped[str | None] = mapped_column(String(200))
    envelope_from: Mapped[str | None] = mapped_column(String(998))
    envelope_to: Mapped[list[Any]] = mapped_column(JSON, default=list)
    received_at: Mapped[datetime]
    raw: Mapped[bytes] = mapped_column(Blob)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    stage: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(40))
    processed_at: Mapped[datetime | None]
    ticket_id: Mapped[int | None] = mapped_column(Id)
    message_id: Mapped[str | None] = mapped_column(String(998))

    __table_args__ = (Index("ix_inbound_state", "state", "id"),)


class TicketRow(Base):
    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(Text)
    requester: Mapped[str] = mapped_column(String(320))
    cc: Mapped[list[Any]] = mapped_column(JSON, default=list)
    channel: Mapped[str] = mapped_column(String(16))
    escalated_by: Mapped[str | None] = mapped_column(String(320))
    external_ref: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    impact: Mapped[str] = mapped_column(String(8))
    urgency: Mapped[str] = mapped_column(String(8))
    priority: Mapped[str] = mapped_column(String(4))
    priority_explicit: Mapped[bool] = mapped_column(Boolean, default=False)
    category: Mapped[str | None] = mapped_column(String(200))
    group: Mapped[str | None] = mapped_column("group_name", String(200))
    assignee: Mapped[str | None] = mapped_column(String(320))
    language: Mapped[str] = mapped_column(String(8))
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    rules_version: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    first_response_due: Mapped[datetime | None]
    resolution_due: Mapped[datetime | None]
    first_responded_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    restoration_due: Mapped[datetime | None]
    restored_at: Mapped[datetime | None]
    paused_at: Mapped[datetime | None]
    paused_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    closure: Mapped[str | None] = mapped_column(String(16))
    resolution_code: Mapped[str | None] = mapped_column(String(100))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    merged_into: Mapped[int | None] = mapped_column(Id)
    linked_to: Mapped[int | None] = mapped_column(Id)
    parent: Mapped[int | None] = mapped_column(Id)
    last_public_at: Mapped[datetime | None]
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    contract: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        Index("ix_tickets_status", "status"),
        Index("ix_tickets_requester", "requester"),
        Index("ix_tickets_created", "created_at"),
        Index("ix_tickets_parent", "parent"),
    )


class MessageRow(Base):
    """A message on a ticket: inbound (raw in `inbound`) or outbound."""

    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(Id, ForeignKey("tickets.id"))
    direction: Mapped[str] = mapped_column(String(3))
    kind: Mapped[str] = mapped_column(String(32))
    sender: Mapped[str] = mapped_column(String(998))
    recipients: Mapped[list[Any]] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(998))
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    references: Mapped[list[Any]] = mapped_column("refs", JSON, default=list)
    at: Mapped[datetime]
    body: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str | None] = mapped_column(Text)
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    inbound_id: Mapped[int | None] = mapped_column(Id, ForeignKey("inbound.id"))
    outbox_id: Mapped[int | None] = mapped_column(Id)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        Index("ix_messages_ticket", "ticket_id", "id"),
        Index("ix_messages_message_id", "message_id"),
    )


class AttachmentRow(Base):
    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    message_row_id: Mapped[int] = mapped_column(Id, ForeignKey("messages.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes | None] = mapped_column(Blob)


class EventRow(Base):
    """The audit trail: every change, who made it, when, through what."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(Id, ForeignKey("tickets.id"))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(320))
    channel: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_events_ticket", "ticket_id", "id"),)


class OutboxRow(Base):
    """Mail to send, written in the transaction of the change that causes it."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int | None] = mapped_column(Id)
    kind: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    recipients: Mapped[list[Any]] = mapped_column(JSON)
    primary_rcpt: Mapped[str] = mapped_column(String(320))
    automatic: Mapped[bool] = mapped_column(Boolean, default=True)
    raw: Mapped[bytes] = mapped_column(Blob)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    leased_until: Mapped[datetime | None]  # in flight at a sender until then
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # What the relay answered, by recipient: {"a@b": {"state": "sent"|"refused"|
    # "deferred", "answer": "550 ..."}}; a recipient sent or refused is not sent again.
    rcpt_results: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_outbox_due", "state", "next_attempt_at"),
        Index("ix_outbox_rcpt", "primary_rcpt", "created_at"),
    )


class TimerRow(Base):
    """A stored deadline for time-driven work (SLA steps, updates, reminders).

    Sweeps ask for rows with `due_at <= now` and `done_at IS NULL`, act, and set
    `done_at` in the same transaction, so each fires once across restarts.
    """

    __tablename__ = "timers"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(Id, ForeignKey("tickets.id"))
    kind: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(100), default="")
    due_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        UniqueConstraint("ticket_id", "kind", "key", name="uq_timers_ticket_kind_key"),
        Index("ix_timers_due", "done_at", "due_at"),
    )


class AddressRow(Base):
    """What we know of a correspondent: a failing address pauses automatic mail."""

    __tablename__ = "addresses"
    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    failing_since: Mapped[datetime | None]
    failure: Mapped[str | None] = mapped_column(Text)


class MailboxStateRow(Base):
    """IMAP progress and health per mailbox and folder, keyed by UIDVALIDITY."""

    __tablename__ = "mailbox_state"
    mailbox: Mapped[str] = mapped_column(String(200), primary_key=True)
    folder: Mapped[str] = mapped_column(String(400), primary_key=True)
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    connected: Mapped[bool] = mapped_column(Boolean, default=False)
    last_success_at: Mapped[datetime | None]
    last_error_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    taken: Mapped[int] = mapped_column(BigInteger, default=0)
    failed: Mapped[int] = mapped_column(BigInteger, default=0)
    poll_seconds: Mapped[int] = mapped_column(Integer, default=30)


class ImapNoteRow(Base):
    """A message on an IMAP server the intake could not finish: a UID the
    server did not deliver (`misses`), a copy made but the original not
    deleted (`copied_to`), a move that failed. Kept by source key until the
    message is gone from the folder; `kind` says what `spocd status` shows."""

    __tablename__ = "imap_notes"
    source_key: Mapped[str] = mapped_column(String(400), primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(200))
    folder: Mapped[str] = mapped_column(String(400))
    misses: Mapped[int] = mapped_column(Integer, default=0)
    copied_to: Mapped[str | None] = mapped_column(String(400))
    kind: Mapped[str | None] = mapped_column(String(16))  # "untaken" | "unmoved"
    problem: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]

    __table_args__ = (Index("ix_imap_notes_mailbox", "mailbox", "folder"),)


class ImapIdentityRow(Base):
    """Which queued item holds the message with this (account, folder,
    Message-ID): a UIDVALIDITY change renames every UID, not the message."""

    __tablename__ = "imap_identities"
    identity: Mapped[str] = mapped_column(String(100), primary_key=True)
    inbound_id: Mapped[int] = mapped_column(Id)
