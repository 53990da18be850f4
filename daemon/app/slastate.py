"""`sla_state` of a ticket (SPEC §3) as of a moment, restoration included (§8).

Kept apart from `slaclock` (which plans and moves the deadlines): this only
reads them.
"""

from __future__ import annotations

from datetime import datetime

from daemon.app.slaclock import WARN_SHARE, policy_of
from daemon.core import businesstime, sla
from daemon.core.domain import Status, Ticket
from daemon.rules.ruleset import Rules

#: Ticket.extra: business seconds the clock stood before the first workaround
#: (the report's restoration time leaves them out).
RESTORED_PAUSED_KEY = "restoration_paused_s"


def restored_moment(ticket: Ticket) -> datetime | None:
    """When the service was back: the first workaround, else the resolution."""
    return ticket.restored_at or ticket.resolved_at


def restoration_deadline(ticket: Ticket) -> datetime | None:
    """`restoration_due`, or the resolution deadline for a ticket stored
    before restoration existed (restoration then counts against resolution)."""
    return ticket.restoration_due or ticket.resolution_due


def restored_in_time(ticket: Ticket) -> bool:
    due = restoration_deadline(ticket)
    return ticket.restored_at is not None and due is not None and ticket.restored_at <= due


def state(
    ticket: Ticket,
    rules: Rules,
    now: datetime,
    warn_share: float = WARN_SHARE,
    seconds: businesstime.Timeline | None = None,
) -> str:
    """`sla_state` of the ticket JSON: ok | warning | breached | paused | met.
    `seconds`: a timeline shared by many tickets (the SLA board), same result.

    Restoration (SPEC §8) is the client's "resolution or workaround" target:
    until the service is restored the state follows the response, restoration
    and resolution targets; once a workaround restored it, the ticket is `met`
    (restored in time, response in time) or `breached`, also while it stays
    open for the permanent fix. A resolved ticket is `met` when it was
    responded to in time and restored in time by a workaround or resolved in
    time (resolution without a workaround also restores the service, so it
    must then meet the restoration target too).
    """
    policy = policy_of(ticket, rules)
    if policy is None or ticket.resolution_due is None:
        return "ok"
    cal = policy.calendar
    restoration_due = restoration_deadline(ticket)
    restored = restored_moment(ticket)
    done_states = (Status.RESOLVED, Status.CLOSED, Status.CANCELLED)
    if ticket.restored_at is not None or ticket.status in done_states:
        done = ticket.resolved_at or ticket.closed_at or now
        response_late = (
            ticket.first_response_due is not None
            and (ticket.first_responded_at or done) > ticket.first_response_due
        )
        restoration_late = restoration_due is not None and (restored or done) > restoration_due
        if ticket.restored_at is not None:
            late = restoration_late
        else:
            late = restoration_late or done > ticket.resolution_due
        return "breached" if late or response_late else "met"
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
                seconds=seconds,
            )
        )
    paused = ticket.paused_at is not None
    dues = [ticket.resolution_due]
    if restoration_due is not None and restoration_due != ticket.resolution_due:
        dues.insert(0, restoration_due)
    for due in dues:
        states.append(
            sla.sla_state(
                now,
                due=due,
                start=ticket.created_at,
                cal=cal,
                paused=paused,
                warn_share=warn_share,
                paused_seconds=ticket.paused_seconds,
                seconds=seconds,
            )
        )
    if "breached" in states:
        return "breached"
    if paused:
        return "paused"
    return str(sla.combine_states(*states))
