"""Contracts between the application and the adapters.

The application (pipeline, ticket services, jobs) is written against these
Protocols; `service.py` hands it the SQL store, the transports and the clock.
A transaction (`Tx`) groups the repositories; repositories never commit.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from daemon.core.domain import (
    Attachment,
    Event,
    InboundItem,
    Intake,
    OutgoingMail,
    StoredMessage,
    Ticket,
)

if TYPE_CHECKING:  # the record's model is loaded where a record is made
    from daemon.core.record import IncidentRecord


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The real time, always aware and in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class FixedClock:
    """A clock that stands still (`--now`)."""

    moment: datetime

    def now(self) -> datetime:
        return self.moment


@dataclass(frozen=True, slots=True)
class QueuedRaw:
    """A raw message for the inbound queue, as an intake adapter saw it."""

    raw: bytes
    intake: Intake
    escalation: bool = False
    source_key: str | None = None  # makes re-delivery by the same source a no-op
    mailbox: str | None = None
    peer: str | None = None
    envelope_from: str | None = None
    envelope_to: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """An inbound queue row for listings (`spocd ingest`, quarantine review)."""

    id: int
    intake: str
    state: str
    received_at: datetime
    size: int
    outcome: str | None
    ticket_number: int | None
    message_id: str | None
    stage: str | None
    reason: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    ticket_number: int | None
    kind: str
    message_id: str
    recipients: tuple[str, ...]
    raw: bytes
    attempts: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Timer:
    id: int
    ticket_number: int
    kind: str
    key: str
    due_at: datetime
    detail: dict[str, Any]
    done_at: datetime | None = None  # set once it fired: it never fires again


class InboundRepo(Protocol):
    def add(self, item: QueuedRaw, now: datetime) -> int | None:
        """Queue a raw message; None when its source_key is already queued."""

    def claim(
        self,
        now: datetime,
        limit: int,
        max_bytes: int | None = None,
        without_raw: Collection[int] = (),
    ) -> list[InboundItem]:
        """Queued items due at `now`, locked for this transaction; at most
        `max_bytes` of raw message in all (but always one, however large).
        Items in `without_raw` (already parsed) come without their bytes."""

    def get_item(self, item_id: int, *, for_update: bool = False) -> InboundItem | None:
        """One item; `for_update` locks it so a concurrent worker cannot take it too."""

    def get_items(
        self,
        item_ids: Sequence[int],
        *,
        for_update: bool = False,
        without_raw: Collection[int] = (),
    ) -> dict[int, InboundItem]:
        """Several items by id in one read, `for_update` locked like `get_item`;
        those in `without_raw` come without their bytes."""

    def ids_by_source(self, keys: Sequence[str]) -> dict[str, int]:
        """The queued items these source keys name (those already queued)."""

    def finish(
        self,
        item_id: int,
        *,
        outcome: str,
        now: datetime,
        ticket_number: int | None = None,
        message_id: str | None = None,
    ) -> None: ...

    def fail(
        self, item_id: int, *, stage: str, reason: str, now: datetime, retry_at: datetime | None
    ) -> None:
        """Record a failure; retry_at None leaves it failed for manual replay."""

    def quarantine(self, item_id: int, *, reason: str, now: datetime) -> None: ...

    def requeue(self, item_id: int, now: datetime) -> bool: ...

    def entry(self, item_id: int) -> QueueEntry | None: ...

    def entries(self, states: Sequence[str], limit: int) -> list[QueueEntry]: ...

    def count(self, state: str) -> int: ...

    def raw(self, item_id: int) -> bytes | None: ...


class TicketRepo(Protocol):
    #: The tickets `save` wrote in this transaction, by number, each with the
    #: object written last: a read taken before may be stale, that object is
    #: not (unless a savepoint undid its save: then no object in hand is current).
    saved: dict[int, object]

    def create(self, ticket: Ticket) -> Ticket:
        """Insert; the returned ticket carries its new sequential number."""

    def get(self, number: int, *, for_update: bool = False) -> Ticket | None: ...

    def get_many(self, numbers: Iterable[int], *, for_update: bool = False) -> dict[int, Ticket]:
        """The tickets of `numbers` that exist, by number."""

    def save(self, ticket: Ticket) -> None: ...

    def listing(self, statuses: Iterable[str] | None, limit: int | None = None) -> list[Ticket]: ...

    def clocks(self, statuses: Iterable[str]) -> list[Ticket]:
        """Tickets in `statuses` with only the fields lists and SLA clocks read."""

    def all_between(self, since: datetime | None, until: datetime | None) -> list[Ticket]: ...

    def contract_ids(self) -> set[str]:
        """Every contract id some ticket carries (removed contracts too)."""
        ...

    def children(self, number: int) -> list[Ticket]:
        """The tickets linked to `number` as their parent (a major incident), by number."""

    def child_counts(self) -> dict[int, int]:
        """How many children each parent has (parents only)."""


class MessageRepo(Protocol):
    def add(
        self,
        message: StoredMessage,
        *,
        html: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> int: ...

    def add_attachments(self, message_row_id: int, attachments: Sequence[Attachment]) -> None: ...

    def ticket_of(self, message_id: str) -> int | None:
        """The ticket a stored Message-ID belongs to (threading by reference)."""

    def exists(self, message_id: str) -> bool: ...

    def of_ticket(self, number: int) -> list[StoredMessage]: ...

    def thread_of(self, number: int) -> list[StoredMessage]:
        """The ticket's messages in order without their bodies, recipients,
        references or attachments: what threading new mail reads, at the
        same cost however long the conversation."""

    def attachment_ids(self, message_row_id: int) -> list[int]:
        """Ids of one message's attachments, in the order they were added."""

    def attachment_rows(self, number: int) -> list[tuple[int, int, Attachment]]:
        """(attachment id, message row id, attachment without its bytes)."""

    def attachment(self, number: int, attachment_id: int) -> tuple[Attachment, int | None] | None:
        """One attachment of the ticket with its bytes, and its inbound id."""

    def move(self, source: int, target: int) -> int: ...


class EventRepo(Protocol):
    def add(self, ticket_number: int, event: Event) -> None: ...

    def of_ticket(self, number: int) -> list[Event]: ...

    def of_types(
        self, types: Iterable[str], since: datetime | None, until: datetime | None
    ) -> list[tuple[int, Event]]:
        """(ticket number, event) of these types with since <= at < until, by time."""


class OutboxRepo(Protocol):
    def add(self, mail: OutgoingMail, now: datetime, *, state: str = "pending") -> int: ...

    def due(self, now: datetime, limit: int) -> list[OutboxItem]:
        """Pending rows due at `now`, locked for this transaction."""

    def lease(self, item_ids: Sequence[int], until: datetime) -> None:
        """Hide rows being sent from other senders until `until`."""

    def release_leases(self) -> int:
        """Make every in-flight row due again (a lone instance after a crash)."""

    def mark_sent(self, item_ids: Sequence[int], now: datetime) -> None: ...

    def record_results(
        self, item_id: int, results: Mapping[str, Mapping[str, str]]
    ) -> dict[str, dict[str, str]]:
        """Add the relay's answers, by recipient ({"state": "sent" | "refused" |
        "deferred", "answer": ...}); `due` then offers only the deferred ones.
        Returns every answer the row has had."""

    def mark_retry(self, item_id: int, error: str, next_at: datetime) -> None: ...

    def mark_failed(self, item_id: int, error: str, now: datetime) -> None: ...

    def automatic_budget(self, address: str, since: datetime) -> tuple[bool, int]:
        """(is the address failing, automatic mails to it since `since`), in one go."""

    def sent_recipients(self, message_id: str) -> tuple[str, ...]:
        """Whom the mail with this Message-ID was handed to (lower-cased); empty
        unless it is a row of ours that was sent. A bounce can fail no one else."""

    def count(self, state: str) -> int: ...


class TimerRepo(Protocol):
    def set(
        self,
        ticket_number: int,
        kind: str,
        key: str,
        due_at: datetime,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Create or move a timer; one that already fired stays fired."""

    def add_many(
        self, ticket_number: int, timers: Sequence[tuple[str, str, datetime, dict[str, Any]]]
    ) -> None:
        """Insert new timers (kind, key, due_at, detail) that do not exist yet."""

    def move(self, timer_id: int, due_at: datetime, detail: dict[str, Any]) -> None:
        """Change an unfired timer's moment."""

    def cancel(self, ticket_number: int, kinds: Iterable[str]) -> None:
        """Drop the ticket's unfired timers of these kinds."""

    def due(self, now: datetime, limit: int, kinds: Iterable[str] | None = None) -> list[Timer]: ...

    def done(self, timer_id: int, now: datetime) -> None: ...

    def done_many(self, timer_ids: Sequence[int], now: datetime) -> None: ...

    def pending(self, ticket_number: int) -> list[Timer]: ...

    def of_ticket(self, ticket_number: int, kinds: Iterable[str] | None = None) -> list[Timer]:
        """Every timer of the ticket, fired ones too (`done_at` set)."""

    def claim(self, timer_id: int, now: datetime) -> Timer | None:
        """The timer if it is still unfired and due at `now`, locked for this
        transaction; None when it fired, moved, vanished or another instance has it."""

    def discard(self, timer_ids: Sequence[int]) -> None:
        """Drop these timers unless they already fired."""

    def postpone(self, timer_id: int, due_at: datetime, error: str) -> None:
        """Move a timer whose action failed to a later try, noting the error."""


class SettingRepo(Protocol):
    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str) -> None: ...

    def first(self, key: str, value: str) -> str:
        """The key's value, set to `value` if it had none. Concurrent
        transactions offering different values all return the one stored."""
        ...

    def advance(self, key: str, value: str) -> bool:
        """Set `key` to `value` if it is unset or holds a smaller text; True
        when this call moved it. Concurrent transactions moving the same key
        to the same value: exactly one gets True (the rest wait for it)."""
        ...


class AddressRepo(Protocol):
    def mark_failing(self, address: str, now: datetime, reason: str) -> None: ...

    def is_failing(self, address: str) -> bool: ...

    def clear(self, address: str) -> bool:
        """The address works again (its owner wrote to us); True if it was
        failing. Nothing is written when it was not."""
        ...


@dataclass(frozen=True, slots=True)
class MailboxState:
    """Progress and health of one IMAP mailbox folder (`spocd status`)."""

    mailbox: str
    folder: str
    uidvalidity: int | None
    last_uid: int
    connected: bool
    last_success_at: datetime | None
    last_error_at: datetime | None
    last_error: str | None
    taken: int
    failed: int
    poll_seconds: int
    untaken: int = 0  # messages the server would not deliver (given up)
    unmoved: int = 0  # messages taken but not moved out of the folder


@dataclass(frozen=True, slots=True)
class ImapNote:
    """What the intake remembers of a message it could not finish."""

    source_key: str
    misses: int = 0
    copied_to: str | None = None
    kind: str | None = None  # "untaken" | "unmoved"
    problem: str | None = None


class MailboxRepo(Protocol):
    """What the IMAP intake records per mailbox and folder.

    The position (UIDVALIDITY, last UID taken) moves in the transaction that
    queues the batch, so it never runs ahead of what is stored.
    """

    def get(self, mailbox: str, folder: str) -> MailboxState | None: ...

    def listing(self) -> list[MailboxState]: ...

    def advance(
        self,
        mailbox: str,
        folder: str,
        *,
        uidvalidity: int,
        last_uid: int,
        taken: int,
        now: datetime,
    ) -> None:
        """Move the position and count newly queued messages (a success is `succeeded`)."""

    def connected(self, mailbox: str, folder: str, *, poll_seconds: int, now: datetime) -> None: ...

    def succeeded(self, mailbox: str, folder: str, *, failed: int, now: datetime) -> None:
        """A complete poll; `failed` messages went to the failed folder."""

    def add_failed(self, mailbox: str, folder: str, failed: int) -> None:
        """Count messages sent to the failed folder by a poll that was no success."""

    def errored(self, mailbox: str, folder: str, *, error: str, now: datetime) -> None:
        """A fault: recorded, and the mailbox is no longer connected."""

    def disconnected(self, mailbox: str, folder: str) -> None: ...

    def notes(self, keys: Sequence[str]) -> dict[str, ImapNote]:
        """What is remembered of these messages (source keys)."""

    def note(self, mailbox: str, folder: str, note: ImapNote, now: datetime) -> None:
        """Remember (or replace) what is known of one message."""

    def prune_notes(self, mailbox: str, folder: str, keep: Iterable[str]) -> None:
        """Drop the notes of this folder's messages that are gone (not in `keep`)."""

    def drop_notes(self, keys: Sequence[str]) -> None: ...

    def item_of(self, identity: str) -> int | None:
        """The queued item holding the message of this identity, if any."""

    def remember(self, identity: str, inbound_id: int) -> None: ...


class Tx(Protocol):
    """One unit of work: everything done through it commits or rolls back."""

    inbound: InboundRepo
    tickets: TicketRepo
    messages: MessageRepo
    events: EventRepo
    outbox: OutboxRepo
    timers: TimerRepo
    settings: SettingRepo
    addresses: AddressRepo
    mailboxes: MailboxRepo

    def savepoint(self) -> AbstractContextManager[Any]:
        """A nested transaction: leaving it by an exception undoes only it."""


class Store(Protocol):
    def transaction(self) -> AbstractContextManager[Tx]:
        """A write transaction, committed when the block ends without error."""

    def reading(self) -> AbstractContextManager[Tx]:
        """A read-only transaction."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A recipient the relay would not take (the others got the mail)."""

    address: str
    answer: str  # "550 5.1.1 no such user"
    permanent: bool  # 5xx: never retried; 4xx: retried, to this recipient alone


class Transport(Protocol):
    """Delivers one rendered mail; raises TransportError when it cannot, and
    returns the recipients it refused (an idempotent transport refuses none).

    An `idempotent` transport delivers a re-sent row only once, so its
    results may be recorded for a batch after `flush()`.
    """

    idempotent: bool

    def send(self, item: OutboxItem, envelope_from: str) -> list[Refusal]: ...

    def abort(self) -> None:
        """From another thread: cut off a send in progress (it raises
        TransportError), for a stop or a lease that runs out."""

    def flush(self) -> None: ...

    def close(self) -> None: ...


class TransportError(Exception):
    """A delivery failed; `permanent` (5xx) failures are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


class Renderer(Protocol):
    """Turns a template name and context into subject, text and HTML."""

    def render(self, language: str, name: str, context: dict[str, Any]) -> Rendered: ...


class RecordPages(Protocol):
    """Lays out an incident record as one self-contained HTML page (SPEC §8)."""

    def html(self, record: IncidentRecord) -> str: ...
