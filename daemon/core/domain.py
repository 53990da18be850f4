"""Value types shared by every layer.

They carry no behaviour that needs I/O, so the pure core (parsing, rules, SLA,
threading) and the adapters can agree on one vocabulary.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Status(enum.StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"


#: The largest ticket number: twelve digits, as a subject tag is read. A
#: longer number names no ticket here, and past 2**63 it would not even fit
#: the database's integer (SQLite raises, and a mail retried would raise again).
MAX_TICKET_NUMBER = 999_999_999_999

#: States before resolution: the ticket still needs work ("open" in the CLI).
OPEN_STATES: frozenset[Status] = frozenset(
    {Status.NEW, Status.ASSIGNED, Status.IN_PROGRESS, Status.PENDING}
)


class Channel(enum.StrEnum):
    """How a ticket came in (ticket JSON `channel`)."""

    EMAIL = "email"
    ESCALATION = "escalation"
    CLI = "cli"


class Intake(enum.StrEnum):
    """Which adapter put a raw message into the inbound queue."""

    SMTP = "smtp"
    IMAP = "imap"
    INGEST = "ingest"
    SPOOL = "spool"


class QueueState(enum.StrEnum):
    QUEUED = "queued"
    DONE = "done"
    FAILED = "failed"  # processing raised; kept for replay
    QUARANTINED = "quarantined"  # not mail, or refused by policy; kept whole


class OutboxState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # permanent (5xx) failure, recorded on the ticket
    SUPPRESSED = "suppressed"  # never sent: loop protection or a failing address


@dataclass(frozen=True, slots=True)
class Address:
    """A mailbox: display name and a lower-cased address."""

    addr: str
    name: str = ""

    @property
    def domain(self) -> str:
        return self.addr.rpartition("@")[2]

    def __str__(self) -> str:
        return self.addr


@dataclass(frozen=True, slots=True)
class Attachment:
    """One attached file.

    `filename` is a display name only (never a path); `content` is None when the
    part was larger than the configured limit: its bytes stay in the raw message.
    """

    filename: str
    content_type: str
    size: int
    sha256: str
    content: bytes | None
    content_id: str | None = None  # an inline part's Content-ID, without <>


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """What the pipeline needs from one inbound message, decoded."""

    message_id: str  # without angle brackets; derived from content when missing
    subject: str  # decoded, folded to one line
    sender: Address | None  # From
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    date: datetime | None = None
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    text: str = ""  # text body; an HTML-only message gets a text rendering
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    defects: tuple[str, ...] = ()
    content_type: str = "text/plain"
    message_id_derived: bool = False
    size: int = 0

    def header(self, name: str) -> str | None:
        """First value of a header (case-insensitive name), or None."""
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def header_all(self, name: str) -> tuple[str, ...]:
        return tuple(self.headers.get(name.lower(), ()))


@dataclass(slots=True)
class InboundItem:
    """A raw message waiting in (or taken from) the inbound queue."""

    id: int
    raw: bytes
    intake: Intake
    escalation: bool
    received_at: datetime
    envelope_from: str | None = None
    envelope_to: tuple[str, ...] = ()
    mailbox: str | None = None
    attempts: int = 0
    state: str = "queued"


@dataclass(slots=True)
class Ticket:
    """A ticket as the application works on it; storage maps it to rows."""

    number: int
    subject: str
    requester: str
    status: Status
    impact: str
    urgency: str
    priority: str
    language: str
    created_at: datetime
    channel: Channel = Channel.EMAIL
    cc: list[str] = field(default_factory=list)
    escalated_by: str | None = None
    external_ref: str | None = None
    category: str | None = None
    group: str | None = None
    assignee: str | None = None
    tags: list[str] = field(default_factory=list)
    priority_explicit: bool = False  # set by a rule or #priority: #impact/#urgency keep it
    rules_version: str | None = None
    updated_at: datetime | None = None
    first_response_due: datetime | None = None
    resolution_due: datetime | None = None
    first_responded_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    restoration_due: datetime | None = None  # SPEC §8: the service back (workaround) by
    restored_at: datetime | None = None  # the first workaround: the service is back
    paused_at: datetime | None = None
    paused_seconds: float = 0.0
    escalation_level: int = 0
    closure: str | None = None
    resolution_code: str | None = None
    resolution_note: str | None = None
    merged_into: int | None = None
    linked_to: int | None = None
    parent: int | None = None  # the major incident this ticket is part of (SPEC §8)
    last_public_at: datetime | None = None  # last mail the requester got from us
    message_count: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    contract: str | None = None  # the client's contract id it opened under (SPEC §7)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATES


@dataclass(frozen=True, slots=True)
class Event:
    """One line of a ticket's audit trail."""

    at: datetime
    actor: str
    type: str
    detail: Mapping[str, Any] = field(default_factory=dict)
    channel: str = "system"


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """A rendered mail waiting in the outbox. `raw` names each attachment
    body by its SHA-256 (see `attachparts`): the outbox keeps no second copy
    of the bytes and puts them back, the same every time, when it sends."""

    message_id: str
    recipients: tuple[str, ...]
    raw: bytes
    kind: str
    ticket_number: int | None = None
    automatic: bool = True
    subject: str = ""
    text: str = ""  # the text part, recorded on the ticket
    internal: bool = False  # to agents only: never shown as mail to the requester


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message as recorded on a ticket (in or out), for `show` and threading."""

    ticket_number: int
    direction: str  # "in" | "out"
    kind: str
    sender: str
    recipients: tuple[str, ...]
    subject: str
    message_id: str
    at: datetime
    body: str = ""
    internal: bool = False
    inbound_id: int | None = None
    outbox_id: int | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    row_id: int | None = None  # the stored row, as read back (for its attachments)
