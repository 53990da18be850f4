"""The SLA board's rows: every open ticket with its next deadline and time left.

Pure: tickets and rules in, rows out. The HTTP page (`board_page`), its JSON
and the morning digests (`digest`) all read these rows, so a ticket shows the
same state and time left everywhere.

Time left is business time in the ticket's SLA calendar, negative once the
deadline passed; a paused ticket's clock stands at the moment it paused.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from daemon.app import slaclock, slastate
from daemon.app.status import status_report
from daemon.config import Settings
from daemon.core import businesstime
from daemon.core.domain import OPEN_STATES, Ticket
from daemon.ports import Tx
from daemon.rules.ruleset import Rules

#: The query-string keys that narrow the board, in the order shown.
FILTERS = ("group", "contract", "assignee", "priority")
#: The statuses the board lists (sorted, for a stable query).
OPEN = tuple(sorted(str(s) for s in OPEN_STATES))
#: SLA states in the order a team lead reads them.
STATES = ("breached", "warning", "ok", "paused")


class Deadline(NamedTuple):
    """An SLA deadline of a ticket: which target, and when."""

    target: str
    due: datetime


@dataclass(slots=True)  # not frozen: built 10,000 at a time, and frozen init is slow
class Row:
    number: int
    tag: str
    subject: str
    requester: str
    contract: str | None
    priority: str
    group: str | None
    assignee: str | None
    status: str
    sla_state: str
    target: str | None
    due: datetime | None
    seconds_left: float | None
    escalation_level: int

    def json(self) -> dict[str, Any]:
        return {
            "id": self.tag,
            "number": self.number,
            "subject": self.subject,
            "requester": self.requester,
            "contract": self.contract,
            "priority": self.priority,
            "group": self.group,
            "assignee": self.assignee,
            "status": self.status,
            "sla_state": self.sla_state,
            "next_deadline": self.target,
            "due": self.due.isoformat() if self.due else None,
            "seconds_left": round(self.seconds_left) if self.seconds_left is not None else None,
            "escalation_level": self.escalation_level,
        }


def deadlines(ticket: Ticket) -> list[Deadline]:
    """The targets still to meet, each with its deadline: the response until
    the first response, the resolution until resolved. (Restoration, when it
    exists, is one more entry here.)"""
    found = []
    if ticket.first_responded_at is None and ticket.first_response_due is not None:
        found.append(Deadline("response", ticket.first_response_due))
    if ticket.resolution_due is not None:
        found.append(Deadline("resolution", ticket.resolution_due))
    return found


def next_deadline(ticket: Ticket) -> Deadline | None:
    soonest = None
    for deadline in deadlines(ticket):
        if soonest is None or deadline.due < soonest.due:
            soonest = deadline
    return soonest


def seconds_left(
    cal: businesstime.Calendar,
    due: datetime,
    now: datetime,
    seconds: businesstime.Timeline | None = None,
) -> float:
    """Business seconds from `now` to `due`; negative when `due` has passed."""
    measure = seconds or businesstime.business_seconds
    if now <= due:
        return measure(cal, now, due)
    return -measure(cal, due, now)


def timeline(tickets: list[Ticket], now: datetime) -> businesstime.Timeline:
    """One timeline spanning every moment the rows will measure (a day of
    margin each side for time zones)."""
    first = min((t.created_at for t in tickets), default=now)
    dues = [t.resolution_due for t in tickets if t.resolution_due is not None]
    dues += [t.first_response_due for t in tickets if t.first_response_due is not None]
    last = max(dues, default=now)
    return businesstime.Timeline(
        min(first, now).date() - timedelta(days=1), max(last, now).date() + timedelta(days=1)
    )


def row(
    ticket: Ticket,
    prefix: str,
    rules: Rules,
    now: datetime,
    seconds: businesstime.Timeline | None = None,
) -> Row:
    deadline = next_deadline(ticket)
    policy = slaclock.policy_of(ticket, rules)
    left = None
    if deadline is not None and policy is not None:
        # A paused clock stands still: its time left is what it had when it stopped.
        at = ticket.paused_at if ticket.paused_at is not None else now
        left = seconds_left(policy.calendar, deadline.due, at, seconds)
    return Row(
        number=ticket.number,
        tag=f"{prefix}-{ticket.number}",
        subject=ticket.subject,
        requester=ticket.requester,
        contract=getattr(ticket, "contract", None),
        priority=ticket.priority,
        group=ticket.group,
        assignee=ticket.assignee,
        status=str(ticket.status),
        sla_state=slastate.state(ticket, rules, now, seconds=seconds),
        target=deadline.target if deadline else None,
        due=deadline.due if deadline else None,
        seconds_left=left,
        escalation_level=ticket.escalation_level,
    )


def rows(tickets: Iterable[Ticket], prefix: str, rules: Rules, now: datetime) -> list[Row]:
    """Open tickets as rows, the least time left first (no deadline last;
    equal times by ticket number, so the order is stable between refreshes)."""
    kept = [t for t in tickets if t.is_open]
    line = timeline(kept, now)
    built = [row(t, prefix, rules, now, line) for t in kept]
    return sorted(
        built,
        key=lambda r: (r.seconds_left is None, r.seconds_left or 0.0, r.number),
    )


def matches(row: Row, filters: Mapping[str, str]) -> bool:
    """A row passes when every given filter equals its field ("-" matches none)."""
    for key in FILTERS:
        wanted = filters.get(key)
        if not wanted:
            continue
        value = getattr(row, key)
        if (value or "-").lower() != wanted.lower():
            return False
    return True


def counts(rows: Iterable[Row]) -> dict[str, Any]:
    """The numbers at the top of the board."""
    states: Counter[str] = Counter()
    priorities: Counter[str] = Counter()
    total = unassigned = 0
    for r in rows:
        total += 1
        states[r.sla_state] += 1
        priorities[r.priority] += 1
        if r.assignee is None:
            unassigned += 1
    return {
        "open": total,
        "breached": states["breached"],
        "warning": states["warning"],
        "paused": states["paused"],
        "unassigned": unassigned,
        "by_priority": dict(sorted(priorities.items())),
    }


def snapshot(
    tx: Tx, settings: Settings, rules: Rules, now: datetime, filters: Mapping[str, str]
) -> dict[str, Any]:
    """Everything the board shows, as data: the counts over the whole desk,
    the rows the filters keep, the filter choices, and intake health.

    Reads only (one indexed query for the open tickets, a few counts), so it
    never waits for or takes the write lock."""
    every = rows(tx.tickets.clocks(OPEN), settings.helpdesk.tag_prefix, rules, now)
    shown = [r for r in every if matches(r, filters)]
    health = status_report(settings, tx, now)
    return {
        "now": now,
        "desk": settings.helpdesk.name,
        "counts": counts(every),
        "rows": shown,
        "filters": {key: filters.get(key, "") for key in FILTERS},
        "choices": {key: sorted({getattr(r, key) or "-" for r in every}) for key in FILTERS},
        "health": {
            "healthy": health["healthy"],
            "intake_failure": health["intake_failure"],
            "mailboxes": [
                {
                    "name": m["name"],
                    "healthy": m["healthy"],
                    "enabled": m["enabled"],
                    "problem": m["problem"],
                }
                for m in health["mailboxes"]
            ],
            "inbound": health["inbound"],
            "outbox": health["outbox"],
        },
    }
