"""What agents (by mail or CLI), requesters and jobs do to a ticket.

One function per action, shared by the mail commands, `spocd ticket` and the
scheduled jobs, so the rules and the audit trail are the same whatever the
channel. Each checks first and raises `ActionRefused` with a reason for the
agent; the caller runs a group of actions in a savepoint, so a refusal
anywhere leaves nothing applied. Resolving, closing and undoing them are in
`closure`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from daemon.app import slaclock
from daemon.app.notify import Thread
from daemon.app.tickets import Actor, Runtime, queue_mail, record_event, thread_of
from daemon.core import lifecycle
from daemon.core.domain import OPEN_STATES, Attachment, Status, Ticket
from daemon.mail import signoff
from daemon.mail.attachparts import NO_FILES, Plan
from daemon.ports import Tx

LEVELS = ("high", "medium", "low")
PRIORITIES = ("P1", "P2", "P3", "P4", "P5")


class ActionRefused(Exception):
    """An action that cannot be done; `str()` is the reason for the agent."""


@dataclass(slots=True)
class Ctx:
    """One actor working on one ticket inside one transaction."""

    tx: Tx
    rt: Runtime
    now: datetime
    actor: Actor
    ticket: Ticket
    _clock: tuple[int, tuple[Any, ...]] = field(init=False)

    def __post_init__(self) -> None:
        self._clock = (self.ticket.number, slaclock.clock_inputs(self.ticket))

    @property
    def tid(self) -> str:
        return self.rt.ticket_id(self.ticket.number)

    def event(self, type_: str, **detail: Any) -> None:
        record_event(self.tx, self.ticket, self.now, self.actor, type_, **detail)

    def save(self) -> None:
        """Bring the SLA clock and timers in line with the change, then store it.
        A change the clock does not read (a reply, a category) plans nothing."""
        self.ticket.updated_at = self.now
        if self._clock != (self.ticket.number, slaclock.clock_inputs(self.ticket)):
            slaclock.reschedule(self.tx, self.ticket, self.rt.rules, self.now)
        self.tx.tickets.save(self.ticket)


# --- status --------------------------------------------------------------------------------


def _move(ctx: Ctx, target: Status, **detail: Any) -> None:
    """Change status through the lifecycle, keeping the SLA clock in step."""
    current = ctx.ticket.status
    try:
        lifecycle.check(current, target)
    except lifecycle.TransitionRefused as exc:
        raise ActionRefused(f"{ctx.tid}: {exc.reason}") from exc
    _set_status(ctx, target, **detail)


def _set_status(ctx: Ctx, target: Status, **detail: Any) -> None:
    """The clock follows when the ticket is saved (`slaclock.reschedule`):
    pending pauses it, leaving pending or reopening runs it again."""
    ticket = ctx.ticket
    previous = ticket.status
    if previous == target:
        return
    ticket.status = target
    ctx.event("status_changed", **{"from": str(previous), "to": str(target)}, **detail)


def set_status(ctx: Ctx, status: str) -> None:
    """`#status` covers the working states; the others have their own command,
    because they carry more than a state (a code, a confirmation, a reason)."""
    target = Status(status)
    hint = {
        Status.RESOLVED: "#resolve CODE with a note",
        Status.CLOSED: "#close",
        Status.CANCELLED: "#cancel",
        Status.NEW: "#reopen",
        Status.ASSIGNED: "#assign ADDRESS",
    }
    if target in hint:
        raise ActionRefused(f"{ctx.tid}: use {hint[target]} to make it {target}")
    _move(ctx, target)


def pending(ctx: Ctx) -> None:
    """Waiting for the requester: the SLA clock stops until they answer."""
    _move(ctx, Status.PENDING)


def requester_answered(ctx: Ctx) -> None:
    """The requester wrote: a pending ticket is back in work, its clock runs."""
    target = lifecycle.on_requester_reply(ctx.ticket.status)
    if target != ctx.ticket.status:
        _set_status(ctx, target, reason="requester answered")


# --- fields --------------------------------------------------------------------------------


def assign(ctx: Ctx, address: str) -> None:
    address = ctx.actor.address if address == "me" else address.lower()
    if not ctx.rt.is_agent(address):
        raise ActionRefused(f"{ctx.tid}: cannot assign to {address}: not an agent in rules.yaml")
    _require_open(ctx, "assign")
    ticket = ctx.ticket
    if ticket.assignee == address:
        return
    old = ticket.assignee
    ticket.assignee = address
    group = ctx.rt.rules.group_of(address)
    if group is not None and ticket.group != group.name and not _member(ctx, ticket.group, address):
        ticket.group = group.name
    ctx.event("assignee_changed", **{"from": old, "to": address}, group=ticket.group)
    target = lifecycle.on_assign(ticket.status)
    if target != ticket.status:
        _set_status(ctx, target)
    if address != ctx.actor.address:
        notify_agents(ctx, "assigned", [address], {"by": ctx.actor.address})


def _member(ctx: Ctx, group: str | None, address: str) -> bool:
    found = ctx.rt.rules.groups.get(group or "")
    return bool(found and (address == found.lead or address in found.members))


def set_group(ctx: Ctx, name: str) -> None:
    if name not in ctx.rt.rules.groups:
        known = ", ".join(sorted(ctx.rt.rules.groups))
        raise ActionRefused(f"{ctx.tid}: no group {name!r} (groups: {known})")
    _require_open(ctx, "move")
    ticket = ctx.ticket
    if ticket.group == name:
        return
    old = ticket.group
    ticket.group = name
    ctx.event("group_changed", **{"from": old, "to": name})
    if ticket.assignee and not _member(ctx, name, ticket.assignee):
        ctx.event(
            "assignee_changed",
            **{"from": ticket.assignee, "to": None},
            reason=f"not in group {name}",
        )
        ticket.assignee = None


def set_category(ctx: Ctx, name: str) -> None:
    if ctx.ticket.category != name:
        ctx.event("category_changed", **{"from": ctx.ticket.category, "to": name})
        ctx.ticket.category = name


def set_priority(ctx: Ctx, priority: str) -> None:
    if priority not in PRIORITIES:
        raise ActionRefused(f"{ctx.tid}: priority must be one of {', '.join(PRIORITIES)}")
    ctx.ticket.priority_explicit = True
    _reprioritise(ctx, priority, reason="set explicitly")


def set_level(ctx: Ctx, which: str, level: str) -> None:
    """#impact / #urgency: the matrix decides the priority unless it was set."""
    if level not in LEVELS:
        raise ActionRefused(f"{ctx.tid}: {which} must be high, medium or low")
    ticket = ctx.ticket
    old = getattr(ticket, which)
    if old == level:
        return
    setattr(ticket, which, level)
    ctx.event(f"{which}_changed", **{"from": old, "to": level})
    if not ticket.priority_explicit:
        _reprioritise(
            ctx,
            ctx.rt.rules.priority_for(ticket.impact, ticket.urgency),
            reason=f"{which} changed (matrix)",
        )


def _reprioritise(ctx: Ctx, priority: str, reason: str) -> None:
    """A new priority brings new SLA targets; time already spent counts (SPEC §5)."""
    ticket = ctx.ticket
    if ticket.priority == priority:
        return
    old = ticket.priority
    ticket.priority = priority
    slaclock.set_deadlines(ticket, ctx.rt.rules)
    ctx.event(
        "priority_changed",
        **{"from": old, "to": priority},
        reason=reason,
        first_response_due=_iso(ticket.first_response_due),
        resolution_due=_iso(ticket.resolution_due),
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _require_open(ctx: Ctx, verb: str) -> None:
    if ctx.ticket.status not in OPEN_STATES:
        raise ActionRefused(
            f"{ctx.tid}: cannot {verb}: the ticket is {ctx.ticket.status}; reopen it first"
        )


# --- conversation --------------------------------------------------------------------------


def reply(
    ctx: Ctx,
    text: str,
    *,
    pending_after: bool = False,
    attachments: Plan = NO_FILES,
    files: Sequence[Attachment] = (),
) -> None:
    """A public reply by an agent, mailed to the requester (and cc): the first
    one is the ticket's first response. `attachments`: what the mail carries
    and lists; `files`: attachments new to the ticket (a CLI reply's), stored
    on the reply itself."""
    ticket = ctx.ticket
    if not text.strip():
        raise ActionRefused(f"{ctx.tid}: an empty reply")
    slaclock.record_response(ctx.tx, ticket, ctx.now)
    target = lifecycle.on_agent_reply(ticket.status, pending=pending_after)
    if target != ticket.status:
        _set_status(ctx, target)
    mail = ctx.rt.composer.compose(
        template="agent_reply",
        kind="agent_reply",
        ticket=ticket,
        to=[ticket.requester],
        cc=ticket.cc,
        context={"text": text, **signature(ctx, text)},
        now=ctx.now,
        thread=thread_of(ctx.tx, ticket, requester=True),
        auto_submitted=None,
        attachments=attachments,
    )
    queue_mail(ctx.tx, ctx.rt, ticket, mail, ctx.now, files=files)
    ctx.event("replied", by=ctx.actor.address, message_id=mail.message_id)


def signature(ctx: Ctx, text: str) -> dict[str, Any]:
    """How a mail of the agent's own words is signed: with the agent's name,
    and no second closing under one they wrote themselves (`signed_off`: a
    closing; `signed`: and their name under it, so only the desk's follows)."""
    end = signoff.ending(text)
    return {
        "agent": ctx.rt.agent_name(ctx.actor.address, ctx.actor.name),
        "signed_off": end.closing,
        "signed": end.named,
    }


def note(ctx: Ctx, text: str) -> None:
    """An internal note: on the ticket, to no requester."""
    if not text.strip():
        raise ActionRefused(f"{ctx.tid}: an empty note")
    ctx.event("note", text=text[:4000])


# --- mail to agents ------------------------------------------------------------------------


def notify_agents(
    ctx: Ctx,
    template: str,
    to: list[str],
    context: dict[str, Any],
    thread: Thread | None = None,
    attachments: Plan = NO_FILES,
) -> None:
    """Ticket mail to agents: tagged and with a signed Message-ID, so a reply
    threads; never rate-limited like answers to strangers, never to requesters."""
    recipients = [a for a in dict.fromkeys(to) if a]
    if not recipients:
        return
    ticket = ctx.ticket
    mail = ctx.rt.composer.compose(
        template=template,
        kind=template,
        ticket=ticket,
        to=recipients,
        context=context,
        now=ctx.now,
        language=ctx.rt.settings.helpdesk.default_language,
        thread=thread if thread is not None else thread_of(ctx.tx, ticket),
        auto_submitted="auto-generated",
        attachments=attachments,
    )
    queue_mail(ctx.tx, ctx.rt, ticket, mail, ctx.now, public=False, internal=True)


def command_result(
    ctx: Ctx, to: str, problems: list[str], thread: Thread, *, untrusted: bool = False
) -> None:
    """Tell an agent why nothing of their mail was applied."""
    mail = ctx.rt.composer.compose(
        template="command_result",
        kind="command_result",
        ticket=ctx.ticket,
        to=[to],
        context={"problems": problems, "untrusted": untrusted},
        now=ctx.now,
        language=ctx.rt.settings.helpdesk.default_language,
        thread=thread,
        auto_submitted="auto-replied",
    )
    queue_mail(ctx.tx, ctx.rt, ctx.ticket, mail, ctx.now, public=False, internal=True)
