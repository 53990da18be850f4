"""The complete incident record (SPEC §8): built from a ticket, its messages,
its events and the rules, as an `IncidentRecord` value.

`build` is pure: the caller reads the ticket, messages, events and attachment
rows (`load` does, in one read transaction) and passes the moment the record
is made. Laying it out is the renderers' job (`record_json` here; text and
HTML in `daemon.adapters.record_page`).

The SLA figures (targets against actual times, pauses, breaches,
escalations) come from `record_sla`.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from daemon.app import record_sla
from daemon.app.record_sla import parse_moment
from daemon.core import text
from daemon.core.domain import Attachment, Event, StoredMessage, Ticket
from daemon.core.record import (
    CLIENT,
    DESK,
    Change,
    Closure,
    Entry,
    FileEntry,
    IncidentRecord,
)
from daemon.mail import attachparts
from daemon.ports import Tx
from daemon.rules.ruleset import Rules

#: Changes of the classification the record lists (event type -> field).
CHANGE_EVENTS = {
    "impact_changed": "impact",
    "urgency_changed": "urgency",
    "priority_changed": "priority",
    "category_changed": "category",
    "group_changed": "group",
    "assignee_changed": "assignee",
    "status_changed": "status",
    "contract_changed": "contract",
}
#: Fields the opening sets, listed first among the changes.
OPENING_FIELDS = ("impact", "urgency", "priority", "category", "group", "assignee")
#: Events that are the desk's own business: left out of a client's record.
INTERNAL_EVENTS = frozenset(
    {
        "note",
        "commands",
        "commands_refused",
        "untrusted_commands",
        "auto_reply_suppressed",
        "tag_not_honoured",
        "address_failing",
        "mail_failed",
        "auto_close_held",
        "sla_retargeted",
        "verification_unclear",
    }
)
#: Outgoing mail a person wrote: the record keeps its text. Other mail
#: (acknowledgements, notices, requests to confirm, the workaround's mail,
#: whose words the workaround event shows) is shown by its subject.
WRITTEN_OUT = frozenset({"agent_reply", "internal_note"})
#: How many lines of the request the record quotes as "what was reported".
REPORTED_LINES = 8
REPORTED_CHARS = 1200


def reported_text(messages: Sequence[StoredMessage]) -> str:
    """The first lines of the request, as the requester wrote them (quotes
    and signature cut): what was wrong, in their words."""
    for m in messages:
        if m.direction == "in" and m.kind == "request" and not m.internal:
            own = text.own_text(m.body or "").strip()
            lines = [line.rstrip() for line in own.splitlines()]
            kept: list[str] = []
            for line in lines:
                if not line and (not kept or not kept[-1]):
                    continue
                kept.append(line)
                if sum(1 for k in kept if k) >= REPORTED_LINES:
                    break
            return "\n".join(kept).strip()[:REPORTED_CHARS]
    return ""


def _changes(ticket: Ticket, events: Sequence[Event]) -> list[Change]:
    out: list[Change] = []
    for e in events:
        if e.type == "created":
            for name in OPENING_FIELDS:
                value = e.detail.get(name)
                if value is not None:
                    out.append(Change(e.at, name, None, str(value), e.actor, "opened"))
            continue
        name = CHANGE_EVENTS.get(e.type)
        if name is None:
            continue
        old, new = e.detail.get("from"), e.detail.get("to")
        reason = e.detail.get("reason")
        out.append(
            Change(
                e.at,
                name,
                None if old is None else str(old),
                None if new is None else str(new),
                e.actor,
                None if reason is None else str(reason),
            )
        )
    return out


def _last(events: Sequence[Event], type_: str) -> Event | None:
    found = [e for e in events if e.type == type_]
    return found[-1] if found else None


def _closure(ticket: Ticket, events: Sequence[Event]) -> Closure:
    if ticket.closure is None:
        return Closure(None, None, None, None)
    closed = _last(events, "closed")
    words = closed.detail.get("note") if closed else None
    return Closure(
        ticket.closure,
        ticket.closed_at or (closed.at if closed else None),
        closed.actor if closed else None,
        str(words) if words else None,
    )


def _timeline(
    messages: Sequence[StoredMessage],
    events: Sequence[Event],
    files_of: dict[int, list[int]],
    audience: str,
) -> list[Entry]:
    """Messages and events by time; at one moment the mail that came in first,
    then what it changed, then the mail that went out."""
    keyed: list[tuple[datetime, int, int, Entry]] = []
    for n, m in enumerate(messages):
        if audience == CLIENT and m.internal:
            continue
        entry = Entry(
            at=m.at,
            kind="message",
            type=m.kind,
            actor=m.sender,
            detail={},
            text=_message_text(m),
            internal=m.internal,
            direction=m.direction,
            to=tuple(m.recipients),
            subject=m.subject,
            attachments=tuple(files_of.get(m.row_id or 0, ())),
        )
        keyed.append((m.at, 0 if m.direction == "in" else 2, n, entry))
    for n, e in enumerate(events):
        internal = e.type in ("note", "untrusted_commands")
        if audience == CLIENT and e.type in INTERNAL_EVENTS:
            continue
        words = e.detail.get("text") if e.type in ("note", "workaround") else None
        if e.type == "closed" or e.type == "verification_unclear":
            words = e.detail.get("note") or e.detail.get("answer")
        keyed.append(
            (
                e.at,
                1,
                n,
                Entry(
                    at=e.at,
                    kind="event",
                    type=e.type,
                    actor=e.actor,
                    detail=dict(e.detail),
                    text=str(words) if words else "",
                    internal=internal,
                ),
            )
        )
    keyed.sort(key=lambda k: (k[0], k[1], k[2]))
    return [k[3] for k in keyed]


def _message_text(m: StoredMessage) -> str:
    """What a message said: a request whole, a reply without the history it
    quotes, our own mail only when a person wrote it."""
    body = m.body or ""
    if m.direction == "in":
        return body if m.kind == "request" else text.own_text(body)
    return text.own_text(body) if m.kind in WRITTEN_OUT else ""


def _files(
    tid: str,
    rows: Sequence[tuple[int, int, Attachment]],
    messages: Sequence[StoredMessage],
    audience: str,
) -> list[FileEntry]:
    by_row = {m.row_id: m for m in messages if m.row_id is not None}
    out = []
    for n, (attachment_id, row_id, a) in enumerate(rows, 1):
        m = by_row.get(row_id)
        internal = bool(m and m.internal)
        if audience == CLIENT and internal:
            continue
        name = attachparts.safe_name(a.filename, n)
        out.append(
            FileEntry(
                id=attachment_id,
                name=name,
                type=a.content_type,
                size=a.size,
                sha256=a.sha256,
                stored=a.content is not None,
                message_at=m.at if m else None,
                message_kind=m.kind if m else "",
                message_from=m.sender if m else "",
                direction=m.direction if m else "",
                internal=internal,
                command=f"spocd attachment {tid} {attachment_id} --output {shlex.quote(name)}",
            )
        )
    return out


def build(
    ticket: Ticket,
    messages: Sequence[StoredMessage],
    events: Sequence[Event],
    attachment_rows: Sequence[tuple[int, int, Attachment]],
    rules: Rules,
    now: datetime,
    *,
    prefix: str,
    desk_name: str,
    desk_address: str,
    timezone: str,
    children: Sequence[int] = (),
    audience: str = DESK,
) -> IncidentRecord:
    """The record of `ticket` as of `now` (events and messages in stored order)."""
    tid = f"{prefix}-{ticket.number}"
    files_of: dict[int, list[int]] = {}
    for attachment_id, row_id, _ in attachment_rows:
        files_of.setdefault(row_id, []).append(attachment_id)
    contract_id = getattr(ticket, "contract", None)
    contract = getattr(rules, "contracts", {}).get(contract_id) if contract_id else None
    zone = _zone_of(contract, rules, timezone)
    workaround = next(
        (e for e in events if e.type == "workaround" and e.detail.get("first", True)), None
    )
    resolved = _last(events, "resolved")
    parent = getattr(ticket, "parent", None)
    return IncidentRecord(
        id=tid,
        number=ticket.number,
        subject=ticket.subject,
        status=str(ticket.status),
        language=ticket.language,
        timezone=zone,
        generated_at=now,
        audience=audience,
        desk_name=desk_name,
        desk_address=desk_address,
        requester=ticket.requester,
        cc=tuple(ticket.cc),
        channel=str(ticket.channel),
        escalated_by=ticket.escalated_by,
        external_ref=ticket.external_ref,
        reported_at=ticket.created_at,
        reported=reported_text(messages),
        contract_id=contract_id,
        contract_name=getattr(contract, "name", None) if contract else None,
        category=ticket.category,
        group=ticket.group,
        assignee=ticket.assignee,
        impact=ticket.impact,
        urgency=ticket.urgency,
        priority=ticket.priority,
        changes=tuple(_changes(ticket, events)),
        sla=record_sla.figures(ticket, events, rules, now),
        restored_at=getattr(ticket, "restored_at", None)
        or (parse_moment(workaround.detail.get("restored_at")) if workaround else None),
        workaround=str(workaround.detail.get("text") or "") or None if workaround else None,
        workaround_by=workaround.actor if workaround else None,
        resolved_at=ticket.resolved_at,
        resolved_by=resolved.actor if resolved and ticket.resolved_at else None,
        resolution_code=ticket.resolution_code,
        resolution_note=ticket.resolution_note,
        closure=_closure(ticket, events),
        parent=f"{prefix}-{parent}" if parent else None,
        children=tuple(f"{prefix}-{n}" for n in children),
        merged_into=f"{prefix}-{ticket.merged_into}" if ticket.merged_into else None,
        linked_to=f"{prefix}-{ticket.linked_to}" if ticket.linked_to else None,
        timeline=tuple(_timeline(messages, events, files_of, audience)),
        files=tuple(_files(tid, attachment_rows, messages, audience)),
    )


def _zone_of(contract: Any, rules: Rules, default: str) -> str:
    """The contract's own calendar's zone (its people's local time), else the desk's."""
    cal = getattr(contract, "calendar", None) if contract else None
    if isinstance(cal, str):
        cal = rules.calendars.get(cal) if hasattr(rules, "calendars") else None
    zone = getattr(cal, "timezone", None)
    return zone if isinstance(zone, str) and zone else default


def load(
    tx: Tx,
    rules: Rules,
    number: int,
    now: datetime,
    *,
    ticket: Ticket | None = None,
    prefix: str,
    desk_name: str,
    desk_address: str,
    timezone: str,
    audience: str = DESK,
) -> IncidentRecord | None:
    """Read one ticket's record in `tx`; None for an unknown ticket. `ticket`:
    the ticket as changed in this transaction (not saved yet), if at hand."""
    ticket = ticket or tx.tickets.get(number)
    if ticket is None:
        return None
    children_of = getattr(tx.tickets, "children", None)
    children = [c.number for c in children_of(number)] if callable(children_of) else []
    return build(
        ticket,
        tx.messages.of_ticket(number),
        tx.events.of_ticket(number),
        tx.messages.attachment_rows(number),
        rules,
        now,
        prefix=prefix,
        desk_name=desk_name,
        desk_address=desk_address,
        timezone=timezone,
        children=children,
        audience=audience,
    )


def record_json(record: IncidentRecord) -> dict[str, Any]:
    """The record as JSON data: moments in ISO 8601 with offset."""
    return _jsonable(asdict(record))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
