"""The incident record (SPEC §8) as plain values.

`daemon.app.record` builds an `IncidentRecord` from a ticket, its messages,
events and the rules; the renderers (text and the printable HTML page in
`daemon.adapters.record_page`, JSON in `daemon.app.record`) only lay it out.
Kept here, in the pure core, so that both the application and the adapters
may use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: Who a record is for: the desk sees everything; a client (the record mailed
#: with the closure) sees no internal notes, no internal mail and no files of them.
DESK = "desk"
CLIENT = "client"


@dataclass(frozen=True, slots=True)
class Change:
    """One change of the ticket's classification (impact, urgency, priority,
    category, group, assignee, status, contract), from the audit trail."""

    at: datetime
    field: str
    old: str | None
    new: str | None
    actor: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the timeline: a message (`kind` "message") or an event."""

    at: datetime
    kind: str  # "message" | "event"
    type: str  # the message kind (request, agent_reply ...) or the event type
    actor: str  # the sender or the event's actor
    detail: Mapping[str, Any]  # an event's detail (empty for a message)
    text: str = ""  # a message's body, a note's or an answer's words
    internal: bool = False
    direction: str | None = None  # "in" | "out" for messages
    to: tuple[str, ...] = ()
    subject: str = ""
    attachments: tuple[int, ...] = ()  # attachment ids (see `FileEntry`)


@dataclass(frozen=True, slots=True)
class Target:
    """One SLA target against what happened.

    `state`: met | breached | running (open, not yet due) | late (open, past
    its due moment) | none (no target). `taken_s`: business seconds from the
    ticket's creation to `actual` (or to the record's moment while running),
    time paused left out. `by`: what met it (restoration: "workaround" or
    "resolution")."""

    name: str  # response | restoration | resolution
    size_s: float | None
    size_days: int
    due: datetime | None
    actual: datetime | None
    taken_s: float | None
    state: str
    by: str | None = None


@dataclass(frozen=True, slots=True)
class Pause:
    since: datetime
    until: datetime | None  # None: still paused
    business_s: float
    reason: str


@dataclass(frozen=True, slots=True)
class Breach:
    at: datetime
    target: str
    due: datetime | None


@dataclass(frozen=True, slots=True)
class Escalation:
    at: datetime
    target: str
    share: float
    level: int
    notified: tuple[str, ...]
    reassigned_to: str | None = None
    priority: str | None = None


@dataclass(frozen=True, slots=True)
class Sla:
    priority: str
    calendar: str
    timezone: str
    always: bool
    targets: tuple[Target, ...]
    paused_s: float
    pauses: tuple[Pause, ...]
    breaches: tuple[Breach, ...]
    escalations: tuple[Escalation, ...]
    level: int


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One attachment of the ticket and where it came."""

    id: int
    name: str
    type: str
    size: int
    sha256: str
    stored: bool  # bytes kept (else fetched from the raw message)
    message_at: datetime | None
    message_kind: str
    message_from: str
    direction: str
    internal: bool
    command: str


@dataclass(frozen=True, slots=True)
class Closure:
    how: str | None  # verified | agent | auto | None (not closed)
    at: datetime | None
    by: str | None
    words: str | None  # the requester's answer, or the agent's note


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    id: str
    number: int
    subject: str
    status: str
    language: str
    timezone: str  # the zone its moments are shown in
    generated_at: datetime
    audience: str
    desk_name: str
    desk_address: str
    requester: str
    cc: tuple[str, ...]
    channel: str
    escalated_by: str | None
    external_ref: str | None
    reported_at: datetime
    reported: str  # the first lines of the request, as reported
    contract_id: str | None
    contract_name: str | None
    category: str | None
    group: str | None
    assignee: str | None
    impact: str
    urgency: str
    priority: str
    changes: tuple[Change, ...]
    sla: Sla | None
    restored_at: datetime | None
    workaround: str | None
    workaround_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_code: str | None
    resolution_note: str | None
    closure: Closure
    parent: str | None
    children: tuple[str, ...]
    merged_into: str | None
    linked_to: str | None
    timeline: tuple[Entry, ...]
    files: tuple[FileEntry, ...]
