"""A ticket's SLA clock: its deadlines, pauses, and state as of a moment.

The arithmetic is `daemon.sla`; this module applies it to tickets.
"""

from __future__ import annotations

from datetime import datetime

from daemon import sla
from daemon.domain import Status, Ticket
from daemon.rules import Rules


def policy_of(ticket: Ticket, rules: Rules):  # type: ignore[no-untyped-def]
    return rules.sla.get(ticket.priority)


def set_deadlines(ticket: Ticket, rules: Rules) -> None:
    """Targets of the ticket's priority counted from its creation, moved by the
    business time it spent paused (so a priority change counts time spent)."""
    policy = policy_of(ticket, rules)
    if policy is None:
        return
    shift = ticket.paused_seconds
    if ticket.first_responded_at is None:
        ticket.first_response_due = sla.retarget(
            policy.calendar, ticket.created_at, policy.response, shift
        )
    ticket.resolution_due = sla.retarget(
        policy.calendar, ticket.created_at, policy.resolution, shift
    )


def pause(ticket: Ticket, now: datetime) -> None:
    """Waiting for the requester: the clock stops."""
    if ticket.paused_at is None:
        ticket.paused_at = now


def resume(ticket: Ticket, rules: Rules, now: datetime) -> float:
    """The clock runs again; deadlines move by the business time spent paused.
    Returns that time in seconds."""
    if ticket.paused_at is None:
        return 0.0
    policy = policy_of(ticket, rules)
    spent = 0.0
    if policy is not None:
        spent = sla.business_seconds(policy.calendar, ticket.paused_at, now)
        if ticket.first_responded_at is None and ticket.first_response_due:
            ticket.first_response_due = sla.resume_deadline(
                policy.calendar, ticket.first_response_due, ticket.paused_at, now
            )
        if ticket.resolution_due:
            ticket.resolution_due = sla.resume_deadline(
                policy.calendar, ticket.resolution_due, ticket.paused_at, now
            )
    ticket.paused_seconds += spent
    ticket.paused_at = None
    return spent


def state(ticket: Ticket, rules: Rules, now: datetime, warn_share: float = 0.75) -> str:
    """`sla_state` of the ticket JSON: ok | warning | breached | paused | met."""
    policy = policy_of(ticket, rules)
    if policy is None or ticket.resolution_due is None:
        return "ok"
    cal = policy.calendar
    if ticket.status in (Status.RESOLVED, Status.CLOSED, Status.CANCELLED):
        done = ticket.resolved_at or ticket.closed_at or now
        response_late = (
            ticket.first_response_due is not None
            and (ticket.first_responded_at or done) > ticket.first_response_due
        )
        late = done > ticket.resolution_due or response_late
        return "breached" if late else "met"
    states = []
    if ticket.first_response_due is not None:
        states.append(
            sla.sla_state(
                now,
                due=ticket.first_response_due,
                start=ticket.created_at,
                cal=cal,
                met_at=ticket.first_responded_at,
                warn_share=warn_share,
                paused_seconds=ticket.paused_seconds,
            )
        )
    paused = ticket.paused_at is not None
    states.append(
        sla.sla_state(
            now,
            due=ticket.resolution_due,
            start=ticket.created_at,
            cal=cal,
            paused=paused,
            warn_share=warn_share,
            paused_seconds=ticket.paused_seconds,
        )
    )
    if "breached" in states:
        return "breached"
    if paused:
        return "paused"
    return str(sla.combine_states(*states))
