"""Tickets with their messages (and attachments) and events: the ticket
record, and its row mapping (`ticket_values` is shared with bulk loads).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, String, bindparam, func, or_, select, type_coerce, update

from daemon.adapters.storage import direct
from daemon.adapters.storage.base import Repo
from daemon.adapters.storage.models import ATTACHMENTS, EVENTS, MESSAGES, TICKETS
from daemon.core.domain import Attachment, Channel, Event, Status, StoredMessage, Ticket

#: Tickets are read with their message count, counted by the messages index.
_MESSAGE_COUNT = (
    select(func.count())
    .select_from(MESSAGES)
    .where(MESSAGES.c.ticket_id == TICKETS.c.id)
    .correlate(TICKETS)
    .scalar_subquery()
    .label("message_count")
)
_TICKETS = select(TICKETS, _MESSAGE_COUNT)
_TICKET_BY_ID = _TICKETS.where(TICKETS.c.id == bindparam("_pk"))
_TICKET_BY_ID_LOCKED = _TICKET_BY_ID.with_for_update()
#: The most numbers one statement of `get_many` takes.
_MAX_IN = 256
_CHILDREN = _TICKETS.where(TICKETS.c.parent == bindparam("parent")).order_by(TICKETS.c.id)
_TICKET_OF_MESSAGE = (
    select(MESSAGES.c.ticket_id).where(MESSAGES.c.message_id == bindparam("mid")).limit(1)
)

_MESSAGES_OF_TICKET = (
    select(MESSAGES).where(MESSAGES.c.ticket_id == bindparam("ticket")).order_by(MESSAGES.c.id)
)
_THREAD_OF_TICKET = (
    select(
        MESSAGES.c.direction,
        MESSAGES.c.kind,
        MESSAGES.c.sender,
        MESSAGES.c.subject,
        MESSAGES.c.message_id,
        MESSAGES.c.at,
        MESSAGES.c.internal,
    )
    .where(MESSAGES.c.ticket_id == bindparam("ticket"))
    .order_by(MESSAGES.c.id)
)
_ATTACHMENT_IDS = (
    select(ATTACHMENTS.c.id)
    .where(ATTACHMENTS.c.message_row_id == bindparam("row"))
    .order_by(ATTACHMENTS.c.id)
)


_TICKET_FIELDS = [f.name for f in fields(Ticket)]
_RENAMED = {"number": "id", "group": "group_name"}
_TICKET_COLUMNS = {name: _RENAMED.get(name, name) for name in _TICKET_FIELDS}


#: The fields `SqlTickets.clocks` reads (the SLA board's columns and clock).
_CLOCK_FIELDS = (
    "number",
    "subject",
    "requester",
    "status",
    "priority",
    "created_at",
    "group",
    "assignee",
    "first_response_due",
    "resolution_due",
    "first_responded_at",
    "paused_at",
    "paused_seconds",
    "escalation_level",
    "contract",
)


_STATUSES = {str(status): status for status in Status}
_TIMES = ("created_at", "first_response_due", "resolution_due", "first_responded_at", "paused_at")


#: Fields copied as they are into their columns; the rest are written below.
_PLAIN = tuple(
    (name, _TICKET_COLUMNS[name])
    for name in _TICKET_FIELDS
    if name not in ("number", "message_count", "status", "channel", "cc", "tags", "extra")
)


@functools.cache
def _tickets_in(size: int, locked: bool) -> Any:
    """Tickets by `size` numbers, a power of two (the list padded with its
    last number): a few prepared shapes run through `direct`, where
    SQLAlchemy's `execute` of a new IN list cost a sweep more than reading
    each ticket alone."""
    stmt = _TICKETS.where(TICKETS.c.id.in_([bindparam(f"n{i}") for i in range(size)]))
    stmt = stmt.order_by(TICKETS.c.id)
    return stmt.with_for_update() if locked else stmt


def ticket_values(ticket: Ticket) -> dict[str, Any]:
    """The `tickets` row of a ticket, without its id (bulk loads use it too).
    Every save writes it whole: field by field, without asking each value
    its type (111 isinstance calls a save)."""
    values = {column: getattr(ticket, name) for name, column in _PLAIN}
    values["status"] = str(ticket.status)
    values["channel"] = str(ticket.channel)
    values["cc"] = list(ticket.cc)
    values["tags"] = list(ticket.tags)
    values["extra"] = dict(ticket.extra)
    values["updated_at"] = ticket.updated_at or ticket.created_at
    return values


def _ticket(row: Any) -> Ticket:
    data = {name: getattr(row, col) for name, col in _TICKET_COLUMNS.items()}
    data["status"] = Status(data["status"])
    data["channel"] = Channel(data["channel"])
    data["cc"] = list(data["cc"] or [])
    data["tags"] = list(data["tags"] or [])
    data["extra"] = dict(data["extra"] or {})
    return Ticket(**data)


#: What `saved` holds for a ticket whose save a savepoint undid: no copy of
#: it is current, so every holder reads it afresh.
_UNDONE = object()


class SqlTickets(Repo):
    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        self.saved: dict[int, object] = {}
        self._saves: list[int] = []  # numbers in the order saved, for `undo`

    def mark(self) -> int:
        return len(self._saves)

    def undo(self, mark: int) -> None:
        """A savepoint rolled back the saves since `mark`: the database holds
        what it held before them, which no copy in hand may match."""
        for number in self._saves[mark:]:
            self.saved[number] = _UNDONE
        del self._saves[mark:]

    def create(self, ticket: Ticket) -> Ticket:
        values = ticket_values(ticket)
        number = self._insert(TICKETS, values)
        ticket.number = number
        return ticket

    def get(self, number: int, *, for_update: bool = False) -> Ticket | None:
        stmt = _TICKET_BY_ID_LOCKED if for_update and self.locking else _TICKET_BY_ID
        found = direct.rows(self.conn, stmt, {"_pk": number})
        return _ticket(found[0]) if found else None

    def get_many(self, numbers: Iterable[int], *, for_update: bool = False) -> dict[int, Ticket]:
        """Several tickets in one query (one per `_MAX_IN`), locked in number
        order (the order every locking path takes them)."""
        wanted = sorted(set(numbers))
        found: dict[int, Ticket] = {}
        for start in range(0, len(wanted), _MAX_IN):
            chunk = wanted[start : start + _MAX_IN]
            size = 1 << (len(chunk) - 1).bit_length()
            chunk += chunk[-1:] * (size - len(chunk))  # a repeat changes nothing in IN
            stmt = _tickets_in(size, for_update and self.locking)
            params = {f"n{i}": number for i, number in enumerate(chunk)}
            for row in direct.rows(self.conn, stmt, params):
                ticket = _ticket(row)
                found[ticket.number] = ticket
        return found

    def save(self, ticket: Ticket) -> None:
        values = ticket_values(ticket)
        self._update(TICKETS, ticket.number, values)
        self.saved[ticket.number] = ticket
        self._saves.append(ticket.number)

    def listing(self, statuses: Iterable[str] | None, limit: int | None = None) -> list[Ticket]:
        stmt = _TICKETS.order_by(TICKETS.c.id)
        if statuses is not None:
            stmt = stmt.where(TICKETS.c.status.in_(list(statuses)))
        if limit:
            stmt = stmt.limit(limit)
        return [_ticket(row) for row in self.conn.execute(stmt)]

    def clocks(self, statuses: Iterable[str]) -> list[Ticket]:
        """Open tickets (`statuses`) with only what lists and the SLA clock of
        an open ticket read (no message count, tags, cc, extra, impact,
        urgency, language, resolution or closure): one query on the status
        index, cheap enough for the SLA board over 10,000 open tickets.

        On SQLite the times come as the stored text and are read with
        `datetime.fromisoformat` (C), several times faster than the generic
        result processing for this many rows; PostgreSQL's driver already
        returns datetimes."""
        text_times = self.conn.dialect.name == "sqlite"
        columns = []
        for name in _CLOCK_FIELDS:
            column = TICKETS.c[_TICKET_COLUMNS[name]]
            columns.append(type_coerce(column, String) if text_times and name in _TIMES else column)
        stmt = select(*columns).where(TICKETS.c.status.in_(list(statuses)))
        parsed: dict[str, datetime] = {}  # deadlines repeat: each text is read once

        def when(value: Any) -> datetime | None:
            if value is None or not text_times:
                return value
            moment = parsed.get(value)
            if moment is None:
                moment = parsed[value] = datetime.fromisoformat(value).replace(tzinfo=UTC)
            return moment

        return [
            Ticket(
                number=number,
                subject=subject,
                requester=requester,
                status=_STATUSES[status],
                impact="",
                urgency="",
                priority=priority,
                language="",
                created_at=when(created_at),  # type: ignore[arg-type]
                group=group,
                assignee=assignee,
                first_response_due=when(response_due),
                resolution_due=when(resolution_due),
                first_responded_at=when(responded_at),
                paused_at=when(paused_at),
                paused_seconds=paused_seconds,
                escalation_level=escalation_level,
                contract=contract,
            )
            for (
                number,
                subject,
                requester,
                status,
                priority,
                created_at,
                group,
                assignee,
                response_due,
                resolution_due,
                responded_at,
                paused_at,
                paused_seconds,
                escalation_level,
                contract,
            ) in self.conn.execute(stmt)
        ]

    def children(self, number: int) -> list[Ticket]:
        return [_ticket(row) for row in direct.rows(self.conn, _CHILDREN, {"parent": number})]

    def child_counts(self) -> dict[int, int]:
        stmt = (
            select(TICKETS.c.parent, func.count())
            .where(TICKETS.c.parent.is_not(None))
            .group_by(TICKETS.c.parent)
        )
        return {int(parent): int(count) for parent, count in self.conn.execute(stmt)}

    def all_between(self, since: datetime | None, until: datetime | None) -> list[Ticket]:
        """Tickets alive in the period: created before its end and not closed
        before its start (the report counts backlog and breaches from these)."""
        stmt = _TICKETS.order_by(TICKETS.c.id)
        if until is not None:
            stmt = stmt.where(TICKETS.c.created_at < until)
        if since is not None:
            stmt = stmt.where(or_(TICKETS.c.closed_at.is_(None), TICKETS.c.closed_at >= since))
        return [_ticket(row) for row in self.conn.execute(stmt)]

    def contract_ids(self) -> set[str]:
        stmt = select(TICKETS.c.contract).where(TICKETS.c.contract.is_not(None)).distinct()
        return set(self.conn.execute(stmt).scalars())


def _stored_message(row: Any, number: int | None = None) -> StoredMessage:
    return StoredMessage(
        ticket_number=number if number is not None else row.ticket_id,
        direction=row.direction,
        kind=row.kind,
        sender=row.sender,
        recipients=tuple(row.recipients or ()),
        subject=row.subject,
        message_id=row.message_id,
        at=row.at,
        body=row.body or "",
        internal=row.internal,
        inbound_id=row.inbound_id,
        outbox_id=row.outbox_id,
        in_reply_to=row.in_reply_to,
        references=tuple(row.refs or ()),
        row_id=row.id,
    )


class SqlMessages(Repo):
    def add(
        self,
        message: StoredMessage,
        *,
        html: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> int:
        row_id = self._insert(
            MESSAGES,
            dict(
                ticket_id=message.ticket_number,
                direction=message.direction,
                kind=message.kind,
                sender=message.sender,
                recipients=list(message.recipients),
                subject=message.subject,
                message_id=message.message_id,
                in_reply_to=message.in_reply_to,
                refs=list(message.references),
                at=message.at,
                body=message.body,
                html=html,
                internal=message.internal,
                inbound_id=message.inbound_id,
                outbox_id=message.outbox_id,
                headers=headers or {},
            ),
        )
        if message.attachments:
            self.add_attachments(row_id, message.attachments)
        return row_id

    def add_attachments(self, message_row_id: int, attachments: Sequence[Attachment]) -> None:
        direct.insert_rows(
            self.conn,
            ATTACHMENTS,
            [
                dict(
                    message_row_id=message_row_id,
                    filename=a.filename,
                    content_type=a.content_type,
                    size=a.size,
                    sha256=a.sha256,
                    content=a.content,
                )
                for a in attachments
            ],
        )

    def ticket_of(self, message_id: str) -> int | None:
        rows = direct.fetch(self.conn, _TICKET_OF_MESSAGE, {"mid": message_id})
        return int(rows[0][0]) if rows else None

    def exists(self, message_id: str) -> bool:
        return self.ticket_of(message_id) is not None

    def of_ticket(self, number: int) -> list[StoredMessage]:
        return [
            _stored_message(row)
            for row in direct.rows(self.conn, _MESSAGES_OF_TICKET, {"ticket": number})
        ]

    def thread_of(self, number: int) -> list[StoredMessage]:
        found = direct.rows(self.conn, _THREAD_OF_TICKET, {"ticket": number})
        return [
            StoredMessage(
                ticket_number=number,
                direction=row.direction,
                kind=row.kind,
                sender=row.sender,
                recipients=(),
                subject=row.subject,
                message_id=row.message_id,
                at=row.at,
                internal=row.internal,
            )
            for row in found
        ]

    def attachments_of(self, number: int) -> list[tuple[int, Attachment]]:
        stmt = (
            select(ATTACHMENTS, MESSAGES.c.id.label("mid"))
            .join(MESSAGES, MESSAGES.c.id == ATTACHMENTS.c.message_row_id)
            .where(MESSAGES.c.ticket_id == number)
            .order_by(ATTACHMENTS.c.id)
        )
        return [
            (row.mid, Attachment(row.filename, row.content_type, row.size, row.sha256, None))
            for row in self.conn.execute(stmt)
        ]

    def attachment_ids(self, message_row_id: int) -> list[int]:
        found = direct.fetch(self.conn, _ATTACHMENT_IDS, {"row": message_row_id})
        return [int(r[0]) for r in found]

    def attachment_rows(self, number: int) -> list[tuple[int, int, Attachment]]:
        """(attachment id, message row id, attachment without its bytes)."""
        stmt = (
            select(*(c for c in ATTACHMENTS.c if c.name != "content"))
            .join(MESSAGES, MESSAGES.c.id == ATTACHMENTS.c.message_row_id)
            .where(MESSAGES.c.ticket_id == number)
            .order_by(ATTACHMENTS.c.id)
        )
        return [
            (
                row.id,
                row.message_row_id,
                Attachment(row.filename, row.content_type, row.size, row.sha256, None),
            )
            for row in self.conn.execute(stmt)
        ]

    def attachment(self, number: int, attachment_id: int) -> tuple[Attachment, int | None] | None:
        """One attachment of the ticket with its bytes (None when not kept),
        and the inbound raw message it came in."""
        stmt = (
            select(ATTACHMENTS, MESSAGES.c.inbound_id)
            .join(MESSAGES, MESSAGES.c.id == ATTACHMENTS.c.message_row_id)
            .where(MESSAGES.c.ticket_id == number, ATTACHMENTS.c.id == attachment_id)
        )
        row = self.conn.execute(stmt).first()
        if row is None:
            return None
        found = Attachment(row.filename, row.content_type, row.size, row.sha256, row.content)
        return found, row.inbound_id

    def move(self, source: int, target: int) -> int:
        return self.conn.execute(
            update(MESSAGES).where(MESSAGES.c.ticket_id == source).values(ticket_id=target)
        ).rowcount


class SqlEvents(Repo):
    def add(self, ticket_number: int, event: Event) -> None:
        values = dict(
            ticket_id=ticket_number,
            at=event.at,
            actor=event.actor,
            channel=event.channel,
            type=event.type,
            detail=dict(event.detail),
        )
        if self.behind is not None:  # read back only by `of_ticket`/`of_types`
            self.behind.insert(EVENTS, values)
        else:
            self._insert(EVENTS, values)

    def of_ticket(self, number: int) -> list[Event]:
        self._settle()
        stmt = select(EVENTS).where(EVENTS.c.ticket_id == number).order_by(EVENTS.c.id)
        return [_event(r) for r in self.conn.execute(stmt)]

    def of_types(
        self, types: Iterable[str], since: datetime | None, until: datetime | None
    ) -> list[tuple[int, Event]]:
        self._settle()
        stmt = select(EVENTS).where(EVENTS.c.type.in_(list(types)))
        if since is not None:
            stmt = stmt.where(EVENTS.c.at >= since)
        if until is not None:
            stmt = stmt.where(EVENTS.c.at < until)
        stmt = stmt.order_by(EVENTS.c.at, EVENTS.c.id)
        return [(r.ticket_id, _event(r)) for r in self.conn.execute(stmt)]


def _event(r: Any) -> Event:
    return Event(at=r.at, actor=r.actor, type=r.type, detail=r.detail or {}, channel=r.channel)
