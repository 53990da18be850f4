"""The SLA figures of the incident record: each target (response,
restoration, resolution) against what happened, the pauses of the clock, the
breaches and the escalation steps, from the ticket and its audit trail.

Each target shows its size, its due moment as the ticket carries it (pauses
and priority changes already applied), the moment it was met, met or
breached, and the business time it took in the ticket's SLA calendar with the
time paused left out. A resolved ticket counts its resolution as its
response and its restoration when none came before (as the SLA state does);
restoration without a target of its own counts against the resolution
target (SPEC §8).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from daemon.app import slaclock
from daemon.core import businesstime
from daemon.core.domain import Event, Ticket
from daemon.core.record import Breach, Escalation, Pause, Sla, Target
from daemon.rules.ruleset import Rules


def parse_moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _pauses(
    ticket: Ticket, events: Sequence[Event], cal: businesstime.Calendar | None, now: datetime
) -> list[Pause]:
    out: list[Pause] = []
    for e in events:
        if e.type != "sla_resumed":
            continue
        since = parse_moment(e.detail.get("since")) or e.at
        reason = "resolved" if e.detail.get("reason") == "reopened" else "pending"
        spent = float(e.detail.get("paused_business_s") or 0)
        out.append(Pause(since, e.at, spent, reason))
    if ticket.paused_at is not None:
        spent = businesstime.business_seconds(cal, ticket.paused_at, now) if cal else 0.0
        out.append(Pause(ticket.paused_at, None, spent, "pending"))
    return out


def _running(
    cal: businesstime.Calendar,
    start: datetime,
    end: datetime,
    pauses: Iterable[Pause],
    now: datetime,
) -> float:
    """Business seconds from `start` to `end`, the pauses within left out."""
    total = businesstime.business_seconds(cal, start, end) if end > start else 0.0
    for p in pauses:
        lo = max(p.since, start)
        hi = min(p.until or now, end)
        if hi > lo:
            total -= businesstime.business_seconds(cal, lo, hi)
    return max(total, 0.0)


def _target(
    name: str,
    ticket: Ticket,
    cal: businesstime.Calendar,
    size: businesstime.Duration | None,
    due: datetime | None,
    actual: datetime | None,
    by: str | None,
    pauses: Sequence[Pause],
    now: datetime,
) -> Target:
    size_s = None
    days = 0
    if size is not None:
        end = businesstime.add_business(cal, ticket.created_at, size)
        size_s = businesstime.business_seconds(cal, ticket.created_at, end)
        days = size.days
    if due is None:
        return Target(name, size_s, days, None, actual, None, "none", by)
    if actual is not None:
        state = "met" if actual <= due else "breached"
        taken = _running(cal, ticket.created_at, actual, pauses, now)
        return Target(name, size_s, days, due, actual, taken, state, by)
    if not ticket.is_open:  # cancelled or merged before it was met
        end = ticket.closed_at or now
        taken = _running(cal, ticket.created_at, end, pauses, now)
        return Target(name, size_s, days, due, None, taken, "none", None)
    taken = _running(cal, ticket.created_at, now, pauses, now)
    return Target(name, size_s, days, due, None, taken, "late" if now > due else "running")


def figures(ticket: Ticket, events: Sequence[Event], rules: Rules, now: datetime) -> Sla | None:
    policy = slaclock.policy_of(ticket, rules)
    if policy is None:
        return None
    cal = policy.calendar
    pauses = _pauses(ticket, events, cal, now)
    resolved = ticket.resolved_at
    restored = getattr(ticket, "restored_at", None)
    own_restoration = getattr(policy, "restoration", None)
    restoration_due = getattr(ticket, "restoration_due", None)
    if restoration_due is None and own_restoration is None:
        restoration_due = ticket.resolution_due
    targets = (
        _target(
            "response",
            ticket,
            cal,
            policy.response,
            ticket.first_response_due,
            ticket.first_responded_at or resolved,
            "reply" if ticket.first_responded_at else ("resolution" if resolved else None),
            pauses,
            now,
        ),
        _target(
            "restoration",
            ticket,
            cal,
            own_restoration or policy.resolution,
            restoration_due,
            restored or resolved,
            "workaround" if restored else ("resolution" if resolved else None),
            pauses,
            now,
        ),
        _target(
            "resolution",
            ticket,
            cal,
            policy.resolution,
            ticket.resolution_due,
            resolved,
            "resolution" if resolved else None,
            pauses,
            now,
        ),
    )
    recorded = [
        Breach(e.at, str(e.detail.get("target", "")), parse_moment(e.detail.get("due")))
        for e in events
        if e.type == "sla_breach"
    ]
    # A target missed while no sweep ran (or after its timer was gone) is a
    # breach all the same: at its due moment.
    seen = {b.target for b in recorded}
    missed = [
        Breach(t.due, t.name, t.due)
        for t in targets
        if t.state in ("breached", "late") and t.due is not None and t.name not in seen
    ]
    breaches = tuple(sorted([*recorded, *missed], key=lambda b: b.at))
    escalations = tuple(
        Escalation(
            e.at,
            str(e.detail.get("target", "")),
            float(e.detail.get("share") or 0),
            int(e.detail.get("level") or 0),
            tuple(e.detail.get("notified") or ()),
            e.detail.get("reassigned_to"),
            e.detail.get("priority"),
        )
        for e in events
        if e.type == "sla_escalation"
    )
    ongoing = sum(p.business_s for p in pauses if p.until is None)
    return Sla(
        priority=ticket.priority,
        calendar=cal.name,
        timezone=cal.timezone,
        always=cal.always,
        targets=targets,
        paused_s=ticket.paused_seconds + ongoing,
        pauses=tuple(pauses),
        breaches=breaches,
        escalations=escalations,
        level=ticket.escalation_level,
    )
