"""Tickets, messages and events as data (ticket JSON of SPEC §3) and as text.

Text goes to a terminal, and mail is written by strangers: control characters
(ANSI escapes can rewrite the screen, set the title, write the clipboard) are
shown as visible escapes, never sent as they are. JSON escapes them itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from daemon.app import slastate
from daemon.core.domain import Attachment, Event, StoredMessage, Ticket
from daemon.rules.ruleset import Rules


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def ticket_json(ticket: Ticket, prefix: str, rules: Rules, now: datetime) -> dict[str, Any]:
    return {
        "id": f"{prefix}-{ticket.number}",
        "number": ticket.number,
        "subject": ticket.subject,
        "requester": ticket.requester,
        "cc": list(ticket.cc),
        "channel": str(ticket.channel),
        "escalated_by": ticket.escalated_by,
        "external_ref": ticket.external_ref,
        "status": str(ticket.status),
        "impact": ticket.impact,
        "urgency": ticket.urgency,
        "priority": ticket.priority,
        "category": ticket.category,
        "group": ticket.group,
        "assignee": ticket.assignee,
        "language": ticket.language,
        "tags": list(ticket.tags),
        "created_at": iso(ticket.created_at),
        "first_response_due": iso(ticket.first_response_due),
        "resolution_due": iso(ticket.resolution_due),
        "first_responded_at": iso(ticket.first_responded_at),
        "resolved_at": iso(ticket.resolved_at),
        "closed_at": iso(ticket.closed_at),
        "restoration_due": iso(ticket.restoration_due),
        "restored_at": iso(ticket.restored_at),
        "sla_state": slastate.state(ticket, rules, now),
        "escalation_level": ticket.escalation_level,
        "closure": ticket.closure,
        "message_count": ticket.message_count,
        "contract": ticket.contract,
        "merged_into": f"{prefix}-{ticket.merged_into}" if ticket.merged_into else None,
        "linked_to": f"{prefix}-{ticket.linked_to}" if ticket.linked_to else None,
        "parent": f"{prefix}-{ticket.parent}" if ticket.parent else None,
        "resolution_code": ticket.resolution_code,
        "rules_version": ticket.rules_version,
    }


def attachment_json(attachment_id: int, attachment: Attachment) -> dict[str, Any]:
    return {
        "id": attachment_id,
        "name": attachment.filename,
        "type": attachment.content_type,
        "size": attachment.size,
        "sha256": attachment.sha256,
    }


def message_json(
    message: StoredMessage, attachments: Sequence[tuple[int, Attachment]] = ()
) -> dict[str, Any]:
    return {
        "direction": message.direction,
        "kind": message.kind,
        "from": message.sender,
        "to": list(message.recipients),
        "subject": message.subject,
        "message_id": message.message_id,
        "at": iso(message.at),
        "internal": message.internal,
        "body": message.body,
        "inbound_id": message.inbound_id,
        "attachments": [attachment_json(i, a) for i, a in attachments],
    }


def event_json(event: Event) -> dict[str, Any]:
    return {
        "at": iso(event.at),
        "actor": event.actor,
        "channel": event.channel,
        "type": event.type,
        "detail": dict(event.detail),
    }


_CONTROLS_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` for a terminal: controls (C0 but tab and newline, DEL, C1, and
    Unicode's line separators and bidirectional overrides) become `\\xNN`."""
    return _CONTROLS_RE.sub(
        lambda m: (
            f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}"
        ),
        text,
    )


def local_time(value: str | None, zone: ZoneInfo) -> str | None:
    """An ISO moment of the JSON as people at the desk read it: their local
    time (helpdesk.timezone), to the minute, with the zone's abbreviation so
    the hour that repeats when summer time ends is still unambiguous."""
    if not value:
        return value
    return datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


_MOMENTS = frozenset(
    (
        "created_at",
        "first_response_due",
        "first_responded_at",
        "resolution_due",
        "resolved_at",
        "closed_at",
        "restoration_due",
        "restored_at",
    )
)
_COLUMNS = "{:<9} {:<11} {:<3} {:<8} {:<14} {:<24} {:<21} {}"


def ticket_header() -> str:
    """The header row of `spocd tickets`, aligned with `ticket_line`."""
    return _COLUMNS.format(
        "TICKET", "STATUS", "PRI", "SLA", "GROUP", "ASSIGNEE", "CREATED", "SUBJECT"
    ).rstrip()


def ticket_line(data: dict[str, Any], zone: ZoneInfo, children: int = 0) -> str:
    """One row of `spocd tickets`; the subject says what a ticket is to a
    major incident: `(part of HD-7)` on a child, `(major: 3 linked)` on a
    parent of `children` tickets."""
    subject = data["subject"][:60]
    if data.get("parent"):
        subject = f"(part of {data['parent']}) {subject}"
    elif children:
        subject = f"(major: {children} linked) {subject}"
    return printable(
        _COLUMNS.format(
            data["id"],
            data["status"],
            data["priority"],
            data["sla_state"],
            data["group"] or "-",
            data["assignee"] or "-",
            local_time(data["created_at"], zone) or "-",
            subject,
        )
    ).replace("\n", " ")


def ticket_text(
    data: dict[str, Any],
    messages: list[dict[str, Any]],
    events: list[dict[str, Any]],
    zone: ZoneInfo,
) -> str:
    """`spocd show`: times in the desk's zone (the JSON keeps ISO with offset)."""
    lines = [f"{data['id']}  {data['subject']}", ""]
    for key in (
        "status",
        "priority",
        "impact",
        "urgency",
        "sla_state",
        "category",
        "group",
        "assignee",
        "requester",
        "cc",
        "channel",
        "escalated_by",
        "external_ref",
        "created_at",
        "first_response_due",
        "first_responded_at",
        "restoration_due",
        "restored_at",
        "resolution_due",
        "resolved_at",
        "closed_at",
        "closure",
        "escalation_level",
        "linked_to",
        "merged_into",
        "parent",
        "children",
    ):
        value = data.get(key)
        if key in _MOMENTS:
            value = local_time(value, zone)
        if value in (None, [], ""):
            continue
        lines.append(f"  {key:<19} {', '.join(value) if isinstance(value, list) else value}")
    lines += ["", f"Messages ({len(messages)}):"]
    for m in messages:
        arrow = "<-" if m["direction"] == "in" else "->"
        flag = " [internal]" if m["internal"] else ""
        lines.append(
            f"  {local_time(m['at'], zone)} {arrow} {m['kind']}{flag} from {m['from']} "
            f"to {', '.join(m['to']) or '-'}"
        )
        lines.append(f"      {m['subject']}")
        for body_line in (m["body"] or "").strip().splitlines()[:12]:
            lines.append(f"      | {body_line}")
        for a in m.get("attachments", ()):
            lines.append(f"      + attachment {a['id']}: {a['name']} ({a['type']}, {a['size']} B)")
    lines += ["", f"History ({len(events)}):"]
    for e in events:
        detail = ", ".join(f"{k}={v}" for k, v in e["detail"].items() if v not in (None, "", []))
        lines.append(
            f"  {local_time(e['at'], zone)} {e['actor']} ({e['channel']}) {e['type']}"
            + (f": {detail}" if detail else "")
        )
    return "\n".join(printable(line).replace("\n", " ") for line in lines)
