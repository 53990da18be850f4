"""Repositories over one SQLAlchemy connection; they never commit.

Written with SQLAlchemy Core statements against the model tables: the
pipeline runs several statements per message, and Core keeps that cheap.
Rows are mapped to the domain types of `daemon.core.domain` at this edge.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.exc import IntegrityError

from daemon.adapters.storage import direct
from daemon.adapters.storage.models import (
    AddressRow,
    AttachmentRow,
    EventRow,
    InboundRow,
    MessageRow,
    OutboxRow,
    Setting,
    TicketRow,
    TimerRow,
)
from daemon.core.domain import (
    Attachment,
    Channel,
    Event,
    InboundItem,
    Intake,
    OutgoingMail,
    Status,
    StoredMessage,
    Ticket,
)
from daemon.mail import attachparts
from daemon.ports import OutboxItem, QueuedRaw, QueueEntry, Timer

INBOUND = InboundRow.__table__
TICKETS = TicketRow.__table__
MESSAGES = MessageRow.__table__
ATTACHMENTS = AttachmentRow.__table__
EVENTS = EventRow.__table__
OUTBOX = OutboxRow.__table__
TIMERS = TimerRow.__table__
SETTINGS = Setting.__table__
ADDRESSES = AddressRow.__table__


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
_MARK_SENT = (
    update(OUTBOX).where(OUTBOX.c.id == bindparam("_pk")).values(attempts=OUTBOX.c.attempts + 1)
)
_TICKET_OF_MESSAGE = (
    select(MESSAGES.c.ticket_id).where(MESSAGES.c.message_id == bindparam("mid")).limit(1)
)
_AUTOMATIC_BUDGET = select(
    select(func.count())
    .select_from(ADDRESSES)
    .where(ADDRESSES.c.address == bindparam("rcpt"), ADDRESSES.c.failing_since.is_not(None))
    .scalar_subquery()
    .label("failing"),
    select(func.count())
    .select_from(OUTBOX)
    .where(
        OUTBOX.c.primary_rcpt == bindparam("rcpt"),
        OUTBOX.c.created_at >= bindparam("since"),
        OUTBOX.c.automatic.is_(True),
        OUTBOX.c.state != "suppressed",
    )
    .scalar_subquery()
    .label("sent"),
)
_CLEAR_ADDRESS = (
    update(ADDRESSES)
    .where(ADDRESSES.c.address == bindparam("address"))
    .values(failing_since=None, failure=None)
)
_TIMERS_OF_TICKET = (
    select(TIMERS).where(TIMERS.c.ticket_id == bindparam("ticket")).order_by(TIMERS.c.id)
)
_TIMERS_OF_TICKET_KINDS = _TIMERS_OF_TICKET.where(
    TIMERS.c.kind.in_(bindparam("kinds", expanding=True))
)
_TICKET_BY_ID = _TICKETS.where(TICKETS.c.id == bindparam("_pk"))
_INBOUND_BY_ID = select(INBOUND).where(INBOUND.c.id == bindparam("_pk"))
_LEASE = (
    update(OUTBOX)
    .where(OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
    .values(leased_until=bindparam("until"))
)


class _Repo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.locking = conn.dialect.name == "postgresql"

    def _insert(self, table: Any, values: dict[str, Any]) -> int:
        return direct.insert_row(self.conn, table, values)

    def _update(self, table: Any, pk: int, values: dict[str, Any]) -> int:
        return direct.update_row(self.conn, table, pk, values)

    def _locked(self, stmt: Any) -> Any:
        """FOR UPDATE SKIP LOCKED on PostgreSQL, so instances never take the
        same row; SQLite's BEGIN IMMEDIATE already serialises writers."""
        return stmt.with_for_update(skip_locked=True) if self.locking else stmt


class SqlInbound(_Repo):
    def add(self, item: QueuedRaw, now: datetime) -> int | None:
        values = dict(
            source_key=item.source_key,
            intake=str(item.intake),
            escalation=item.escalation,
            mailbox=item.mailbox,
            peer=item.peer,
            envelope_from=item.envelope_from,
            envelope_to=list(item.envelope_to),
            received_at=now,
            raw=item.raw,
            size=len(item.raw),
            sha256=hashlib.sha256(item.raw).hexdigest(),
            state="queued",
            attempts=0,
            next_attempt_at=now,
        )
        if item.source_key is not None:
            exists = self.conn.execute(
                select(INBOUND.c.id).where(INBOUND.c.source_key == item.source_key)
            ).first()
            if exists:
                return None
            try:
                with self.conn.begin_nested():
                    return self._insert(INBOUND, values)
            except IntegrityError:
                return None  # a concurrent instance queued the same source first
        return self._insert(INBOUND, values)

    def claim(
        self,
        now: datetime,
        limit: int,
        max_bytes: int | None = None,
        without_raw: Collection[int] = (),
    ) -> list[InboundItem]:
        due = (
            select(INBOUND.c.id, INBOUND.c.size)
            .where(INBOUND.c.state == "queued", INBOUND.c.next_attempt_at <= now)
            .order_by(INBOUND.c.id)
            .limit(limit)
        )
        chosen: list[int] = []
        total = 0
        for item_id, size in self.conn.execute(self._locked(due)):
            if chosen and max_bytes is not None and total + size > max_bytes:
                break  # raw bytes are loaded for the group at once: keep it bounded
            chosen.append(item_id)
            total += size
        if not chosen:
            return []
        skip = [item_id for item_id in chosen if item_id in without_raw]
        load = [item_id for item_id in chosen if item_id not in without_raw]
        items = []
        if load:
            rows = self.conn.execute(select(INBOUND).where(INBOUND.c.id.in_(load)))
            items += [_inbound_item(row) for row in rows]
        if skip:  # parsed before the transaction: a second copy of the bytes would be waste
            rows = self.conn.execute(select(*_NO_RAW).where(INBOUND.c.id.in_(skip)))
            items += [_inbound_item(row, raw=b"") for row in rows]
        return sorted(items, key=lambda item: item.id)

    def get_item(self, item_id: int, *, for_update: bool = False) -> InboundItem | None:
        stmt = _INBOUND_BY_ID.with_for_update() if for_update and self.locking else _INBOUND_BY_ID
        row = self.conn.execute(stmt, {"_pk": item_id}).first()  # waits for a worker holding it
        return _inbound_item(row) if row else None

    def ids_by_source(self, keys: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        keys = list(keys)
        for start in range(0, len(keys), 500):
            stmt = select(INBOUND.c.source_key, INBOUND.c.id).where(
                INBOUND.c.source_key.in_(keys[start : start + 500])
            )
            found.update({row.source_key: row.id for row in self.conn.execute(stmt)})
        return found

    def finish(
        self,
        item_id: int,
        *,
        outcome: str,
        now: datetime,
        ticket_number: int | None = None,
        message_id: str | None = None,
    ) -> None:
        self._update(
            INBOUND,
            item_id,
            dict(
                state="done",
                outcome=outcome,
                processed_at=now,
                ticket_id=ticket_number,
                message_id=message_id,
                stage=None,
                reason=None,
            ),
        )

    def fail(
        self, item_id: int, *, stage: str, reason: str, now: datetime, retry_at: datetime | None
    ) -> None:
        self.conn.execute(
            update(INBOUND)
            .where(INBOUND.c.id == item_id)
            .values(
                state="queued" if retry_at else "failed",
                stage=stage,
                reason=reason[:4000],
                attempts=INBOUND.c.attempts + 1,
                next_attempt_at=retry_at,
                processed_at=now,
                outcome="failed",
            )
        )

    def quarantine(self, item_id: int, *, reason: str, now: datetime) -> None:
        self.conn.execute(
            update(INBOUND)
            .where(INBOUND.c.id == item_id)
            .values(
                state="quarantined",
                outcome="quarantined",
                reason=reason[:4000],
                stage="parse",
                processed_at=now,
            )
        )

    def requeue(self, item_id: int, now: datetime) -> bool:
        result = self.conn.execute(
            update(INBOUND)
            .where(INBOUND.c.id == item_id, INBOUND.c.state.in_(("failed", "quarantined")))
            .values(state="queued", next_attempt_at=now)
        )
        return result.rowcount > 0

    def entry(self, item_id: int) -> QueueEntry | None:
        row = self.conn.execute(_entry_select().where(INBOUND.c.id == item_id)).first()
        return _queue_entry(row) if row else None

    def entries(self, states: Sequence[str], limit: int) -> list[QueueEntry]:
        stmt = _entry_select().where(INBOUND.c.state.in_(list(states)))
        stmt = stmt.order_by(INBOUND.c.id.desc()).limit(limit)
        return [_queue_entry(row) for row in self.conn.execute(stmt)]

    def count(self, state: str) -> int:
        return self.conn.execute(
            select(func.count()).select_from(INBOUND).where(INBOUND.c.state == state)
        ).scalar_one()

    def raw(self, item_id: int) -> bytes | None:
        return self.conn.execute(select(INBOUND.c.raw).where(INBOUND.c.id == item_id)).scalar()


def _entry_select() -> Any:
    return select(
        INBOUND.c.id,
        INBOUND.c.intake,
        INBOUND.c.state,
        INBOUND.c.received_at,
        INBOUND.c.size,
        INBOUND.c.outcome,
        INBOUND.c.ticket_id,
        INBOUND.c.message_id,
        INBOUND.c.stage,
        INBOUND.c.reason,
        INBOUND.c.attempts,
    )


def _queue_entry(row: Any) -> QueueEntry:
    return QueueEntry(
        id=row.id,
        intake=row.intake,
        state=row.state,
        received_at=row.received_at,
        size=row.size,
        outcome=row.outcome,
        ticket_number=row.ticket_id,
        message_id=row.message_id,
        stage=row.stage,
        reason=row.reason,
        attempts=row.attempts,
    )


#: Every inbound column but the raw bytes.
_NO_RAW = [column for column in INBOUND.c if column.name != "raw"]


def _inbound_item(row: Any, raw: bytes | None = None) -> InboundItem:
    return InboundItem(
        id=row.id,
        raw=row.raw if raw is None else raw,
        intake=Intake(row.intake),
        escalation=row.escalation,
        received_at=row.received_at,
        envelope_from=row.envelope_from,
        envelope_to=tuple(row.envelope_to or ()),
        mailbox=row.mailbox,
        attempts=row.attempts,
        state=row.state,
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
)


_STATUSES = {str(status): status for status in Status}
_TIMES = ("created_at", "first_response_due", "resolution_due", "first_responded_at", "paused_at")


def ticket_values(ticket: Ticket) -> dict[str, Any]:
    """The `tickets` row of a ticket, without its id (bulk loads use it too)."""
    values: dict[str, Any] = {}
    for name in _TICKET_FIELDS:
        if name == "number":
            continue
        value = getattr(ticket, name)
        if isinstance(value, (Status, Channel)):
            value = str(value)
        elif isinstance(value, list):
            value = list(value)
        elif isinstance(value, dict):
            value = dict(value)
        values[_TICKET_COLUMNS[name]] = value
    values["updated_at"] = ticket.updated_at or ticket.created_at
    del values["message_count"]  # counted from the messages, not stored
    return values


def _ticket(row: Any) -> Ticket:
    data = {name: getattr(row, col) for name, col in _TICKET_COLUMNS.items()}
    data["status"] = Status(data["status"])
    data["channel"] = Channel(data["channel"])
    data["cc"] = list(data["cc"] or [])
    data["tags"] = list(data["tags"] or [])
    data["extra"] = dict(data["extra"] or {})
    return Ticket(**data)


class SqlTickets(_Repo):
    def create(self, ticket: Ticket) -> Ticket:
        values = ticket_values(ticket)
        number = self._insert(TICKETS, values)
        ticket.number = number
        return ticket

    def get(self, number: int, *, for_update: bool = False) -> Ticket | None:
        stmt = _TICKET_BY_ID.with_for_update() if for_update and self.locking else _TICKET_BY_ID
        row = self.conn.execute(stmt, {"_pk": number}).first()
        return _ticket(row) if row else None

    def save(self, ticket: Ticket) -> None:
        values = ticket_values(ticket)
        self._update(TICKETS, ticket.number, values)

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
            ) in self.conn.execute(stmt)
        ]

    def all_between(self, since: datetime | None, until: datetime | None) -> list[Ticket]:
        """Tickets alive in the period: created before its end and not closed
        before its start (the report counts backlog and breaches from these)."""
        stmt = _TICKETS.order_by(TICKETS.c.id)
        if until is not None:
            stmt = stmt.where(TICKETS.c.created_at < until)
        if since is not None:
            stmt = stmt.where(or_(TICKETS.c.closed_at.is_(None), TICKETS.c.closed_at >= since))
        return [_ticket(row) for row in self.conn.execute(stmt)]


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


class SqlMessages(_Repo):
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
        self.conn.execute(
            insert(ATTACHMENTS),
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
        stmt = select(MESSAGES).where(MESSAGES.c.ticket_id == number).order_by(MESSAGES.c.id)
        return [_stored_message(row) for row in self.conn.execute(stmt)]

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
        stmt = (
            select(ATTACHMENTS.c.id)
            .where(ATTACHMENTS.c.message_row_id == message_row_id)
            .order_by(ATTACHMENTS.c.id)
        )
        return [int(r[0]) for r in self.conn.execute(stmt)]

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


class SqlEvents(_Repo):
    def add(self, ticket_number: int, event: Event) -> None:
        self._insert(
            EVENTS,
            dict(
                ticket_id=ticket_number,
                at=event.at,
                actor=event.actor,
                channel=event.channel,
                type=event.type,
                detail=dict(event.detail),
            ),
        )

    def of_ticket(self, number: int) -> list[Event]:
        stmt = select(EVENTS).where(EVENTS.c.ticket_id == number).order_by(EVENTS.c.id)
        return [_event(r) for r in self.conn.execute(stmt)]

    def of_types(
        self, types: Iterable[str], since: datetime | None, until: datetime | None
    ) -> list[tuple[int, Event]]:
        stmt = select(EVENTS).where(EVENTS.c.type.in_(list(types)))
        if since is not None:
            stmt = stmt.where(EVENTS.c.at >= since)
        if until is not None:
            stmt = stmt.where(EVENTS.c.at < until)
        stmt = stmt.order_by(EVENTS.c.at, EVENTS.c.id)
        return [(r.ticket_id, _event(r)) for r in self.conn.execute(stmt)]


def _event(r: Any) -> Event:
    return Event(at=r.at, actor=r.actor, type=r.type, detail=r.detail or {}, channel=r.channel)


class SqlOutbox(_Repo):
    def add(self, mail: OutgoingMail, now: datetime, *, state: str = "pending") -> int:
        return self._insert(
            OUTBOX,
            dict(
                ticket_id=mail.ticket_number,
                kind=mail.kind,
                message_id=mail.message_id,
                recipients=list(mail.recipients),
                primary_rcpt=mail.recipients[0].lower(),
                automatic=mail.automatic,
                raw=mail.raw,
                state=state,
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            ),
        )

    def due(self, now: datetime, limit: int) -> list[OutboxItem]:
        stmt = (
            select(OUTBOX)
            .where(
                OUTBOX.c.state == "pending",
                OUTBOX.c.next_attempt_at <= now,
                or_(OUTBOX.c.leased_until.is_(None), OUTBOX.c.leased_until <= now),
            )
            .order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.id)
            .limit(limit)
        )
        items = []
        for r in self.conn.execute(self._locked(stmt)).all():
            try:
                raw = self._whole(r.raw, r.ticket_id)
            except LookupError as exc:  # its bytes are gone: say so, never send half
                self.mark_failed(r.id, str(exc), now)
                continue
            items.append(
                OutboxItem(
                    id=r.id,
                    ticket_number=r.ticket_id,
                    kind=r.kind,
                    message_id=r.message_id,
                    recipients=_still_to_send(r.recipients, r.rcpt_results),
                    raw=raw,
                    attempts=r.attempts,
                    created_at=r.created_at,
                )
            )
        return items

    def _whole(self, raw: bytes, ticket_number: int | None) -> bytes:
        """The stored mail with its attachments' bytes put back (`attachparts`)."""
        if attachparts.MARK not in raw:
            return raw
        return attachparts.expand(raw, lambda sha: self._blob(sha, ticket_number))

    def _blob(self, sha256: str, ticket_number: int | None) -> bytes | None:
        """An attachment's bytes by hash: the ticket's own first (indexed),
        then any (a merged ticket's messages moved)."""
        base = select(ATTACHMENTS.c.content).where(
            ATTACHMENTS.c.sha256 == sha256, ATTACHMENTS.c.content.is_not(None)
        )
        if ticket_number is not None:
            scoped = base.join(MESSAGES, MESSAGES.c.id == ATTACHMENTS.c.message_row_id).where(
                MESSAGES.c.ticket_id == ticket_number
            )
            found = self.conn.execute(scoped.limit(1)).scalar()
            if found is not None:
                return bytes(found)
        found = self.conn.execute(base.limit(1)).scalar()
        return bytes(found) if found is not None else None

    def lease(self, item_ids: Sequence[int], until: datetime) -> None:
        if item_ids:
            self.conn.execute(_LEASE, {"ids": list(item_ids), "until": until})

    def release_leases(self) -> int:
        return self.conn.execute(
            update(OUTBOX)
            .where(OUTBOX.c.state == "pending", OUTBOX.c.leased_until.is_not(None))
            .values(leased_until=None)
        ).rowcount

    def mark_sent(self, item_ids: Sequence[int], now: datetime) -> None:
        if item_ids:
            self.conn.execute(
                _MARK_SENT,
                [
                    {
                        "_pk": item_id,
                        "state": "sent",
                        "sent_at": now,
                        "last_error": None,
                        "leased_until": None,
                    }
                    for item_id in item_ids
                ],
            )

    def record_results(
        self, item_id: int, results: Mapping[str, Mapping[str, str]]
    ) -> dict[str, dict[str, str]]:
        known = self.conn.execute(
            select(OUTBOX.c.rcpt_results).where(OUTBOX.c.id == item_id)
        ).scalar_one_or_none()
        merged = {**(known or {}), **{address: dict(r) for address, r in results.items()}}
        self.conn.execute(update(OUTBOX).where(OUTBOX.c.id == item_id).values(rcpt_results=merged))
        return merged

    def mark_retry(self, item_id: int, error: str, next_at: datetime) -> None:
        self.conn.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == item_id)
            .values(
                attempts=OUTBOX.c.attempts + 1,
                last_error=error[:2000],
                next_attempt_at=next_at,
                leased_until=None,
            )
        )

    def mark_failed(self, item_id: int, error: str, now: datetime) -> None:
        self.conn.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == item_id)
            .values(
                state="failed",
                attempts=OUTBOX.c.attempts + 1,
                last_error=error[:2000],
                sent_at=None,
                leased_until=None,
            )
        )

    def count(self, state: str) -> int:
        return self.conn.execute(
            select(func.count()).select_from(OUTBOX).where(OUTBOX.c.state == state)
        ).scalar_one()

    def automatic_budget(self, address: str, since: datetime) -> tuple[bool, int]:
        [(failing, sent)] = direct.fetch(
            self.conn, _AUTOMATIC_BUDGET, {"rcpt": address.lower(), "since": since}
        )
        return bool(failing), int(sent)

    def sent_recipients(self, message_id: str) -> tuple[str, ...]:
        found = self.conn.execute(
            select(OUTBOX.c.recipients).where(
                OUTBOX.c.message_id == message_id, OUTBOX.c.state == "sent"
            )
        ).scalar()
        return tuple(str(r).lower() for r in found or ())


def _still_to_send(recipients: list[str], results: dict[str, Any] | None) -> tuple[str, ...]:
    """The recipients the relay has neither taken nor refused for good."""
    done = {a for a, r in (results or {}).items() if r.get("state") in ("sent", "refused")}
    return tuple(a for a in recipients if a not in done)


class SqlTimers(_Repo):
    def set(
        self,
        ticket_number: int,
        kind: str,
        key: str,
        due_at: datetime,
        detail: dict[str, Any] | None = None,
    ) -> None:
        where = and_(
            TIMERS.c.ticket_id == ticket_number, TIMERS.c.kind == kind, TIMERS.c.key == key
        )
        existing = self.conn.execute(select(TIMERS.c.id, TIMERS.c.done_at).where(where)).first()
        if existing is None:
            self.conn.execute(
                insert(TIMERS).values(
                    ticket_id=ticket_number, kind=kind, key=key, due_at=due_at, detail=detail or {}
                )
            )
        elif existing.done_at is None:
            self.conn.execute(
                update(TIMERS)
                .where(TIMERS.c.id == existing.id)
                .values(due_at=due_at, detail=detail or {})
            )

    def add_many(
        self, ticket_number: int, timers: Sequence[tuple[str, str, datetime, dict[str, Any]]]
    ) -> None:
        """New timers in one statement (the caller knows none of them exists)."""
        direct.insert_rows(
            self.conn,
            TIMERS,
            [
                dict(ticket_id=ticket_number, kind=kind, key=key, due_at=due_at, detail=detail)
                for kind, key, due_at, detail in timers
            ],
        )

    def move(self, timer_id: int, due_at: datetime, detail: dict[str, Any]) -> None:
        self._update(TIMERS, timer_id, {"due_at": due_at, "detail": detail})

    def cancel(self, ticket_number: int, kinds: Iterable[str]) -> None:
        self.conn.execute(
            delete(TIMERS).where(
                TIMERS.c.ticket_id == ticket_number,
                TIMERS.c.kind.in_(list(kinds)),
                TIMERS.c.done_at.is_(None),
            )
        )

    def due(self, now: datetime, limit: int, kinds: Iterable[str] | None = None) -> list[Timer]:
        stmt = select(TIMERS).where(TIMERS.c.done_at.is_(None), TIMERS.c.due_at <= now)
        if kinds is not None:
            stmt = stmt.where(TIMERS.c.kind.in_(list(kinds)))
        stmt = stmt.order_by(TIMERS.c.due_at, TIMERS.c.id).limit(limit)
        return [_timer(r) for r in self.conn.execute(self._locked(stmt))]

    def done(self, timer_id: int, now: datetime) -> None:
        self.conn.execute(update(TIMERS).where(TIMERS.c.id == timer_id).values(done_at=now))

    def done_many(self, timer_ids: Sequence[int], now: datetime) -> None:
        if timer_ids:
            self.conn.execute(
                update(TIMERS).where(TIMERS.c.id.in_(list(timer_ids))).values(done_at=now)
            )

    def pending(self, ticket_number: int) -> list[Timer]:
        stmt = (
            select(TIMERS)
            .where(TIMERS.c.ticket_id == ticket_number, TIMERS.c.done_at.is_(None))
            .order_by(TIMERS.c.due_at)
        )
        return [_timer(r) for r in self.conn.execute(stmt)]

    def of_ticket(self, ticket_number: int, kinds: Iterable[str] | None = None) -> list[Timer]:
        if kinds is None:
            rows = self.conn.execute(_TIMERS_OF_TICKET, {"ticket": ticket_number})
        else:
            rows = self.conn.execute(
                _TIMERS_OF_TICKET_KINDS, {"ticket": ticket_number, "kinds": list(kinds)}
            )
        return [_timer(r) for r in rows]

    def claim(self, timer_id: int, now: datetime) -> Timer | None:
        stmt = select(TIMERS).where(
            TIMERS.c.id == timer_id, TIMERS.c.done_at.is_(None), TIMERS.c.due_at <= now
        )
        row = self.conn.execute(self._locked(stmt)).first()
        return _timer(row) if row else None

    def discard(self, timer_ids: Sequence[int]) -> None:
        if timer_ids:
            self.conn.execute(
                delete(TIMERS).where(TIMERS.c.id.in_(list(timer_ids)), TIMERS.c.done_at.is_(None))
            )

    def postpone(self, timer_id: int, due_at: datetime, error: str) -> None:
        row = self.conn.execute(select(TIMERS.c.detail).where(TIMERS.c.id == timer_id)).first()
        if row is None:
            return
        detail = {**(row.detail or {}), "last_error": error[:500]}
        detail["failures"] = int(detail.get("failures", 0)) + 1
        self.conn.execute(
            update(TIMERS)
            .where(TIMERS.c.id == timer_id, TIMERS.c.done_at.is_(None))
            .values(due_at=due_at, detail=detail)
        )


def _timer(row: Any) -> Timer:
    return Timer(
        id=row.id,
        ticket_number=row.ticket_id,
        kind=row.kind,
        key=row.key,
        due_at=row.due_at,
        detail=dict(row.detail or {}),
        done_at=row.done_at,
    )


class SqlSettings(_Repo):
    def get(self, key: str) -> str | None:
        return self.conn.execute(select(SETTINGS.c.value).where(SETTINGS.c.key == key)).scalar()

    def put(self, key: str, value: str) -> None:
        if self.get(key) is None:
            self.conn.execute(insert(SETTINGS).values(key=key, value=value))
        else:
            self.conn.execute(update(SETTINGS).where(SETTINGS.c.key == key).values(value=value))


class SqlAddresses(_Repo):
    def mark_failing(self, address: str, now: datetime, reason: str) -> None:
        address = address.lower()
        if self.conn.execute(
            select(ADDRESSES.c.address).where(ADDRESSES.c.address == address)
        ).first():
            self.conn.execute(
                update(ADDRESSES)
                .where(ADDRESSES.c.address == address)
                .values(failing_since=now, failure=reason[:2000])
            )
        else:
            self.conn.execute(
                insert(ADDRESSES).values(address=address, failing_since=now, failure=reason[:2000])
            )

    def is_failing(self, address: str) -> bool:
        return (
            self.conn.execute(
                select(ADDRESSES.c.failing_since).where(ADDRESSES.c.address == address.lower())
            ).scalar()
            is not None
        )

    def clear(self, address: str) -> None:
        direct.execute(self.conn, _CLEAR_ADDRESS, {"address": address.lower()})
