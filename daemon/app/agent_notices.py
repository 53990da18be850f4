"""What agents hear of mail on their tickets: follow-ups, bounces, request text.

A requester's (or cc's) mail on a ticket someone works is of no use stored
unseen; this module forwards it, and a bounce of mail to the requester, to
the people working the ticket, with the facts and the new text only.
"""

from __future__ import annotations

from daemon.app import actions
from daemon.app.actions import Ctx
from daemon.app.tickets import Runtime
from daemon.core import text
from daemon.core.domain import OPEN_STATES, ParsedMessage, Status, StoredMessage, Ticket
from daemon.mail import bounces
from daemon.mail.attachparts import NO_FILES, Plan
from daemon.ports import Tx

#: Inbound kinds that say what the problem is: the request (an escalation's
#: original, else first line's own mail) and later replies.
REQUEST_KINDS = ("escalation", "request", "reply")
#: The most of one mail's text an agent notice carries.
MAX_TEXT = 8000


def working_agents(rt: Runtime, ticket: Ticket) -> list[str]:
    """Who works the ticket: its assignee, else everyone of its group."""
    if ticket.assignee:
        return [ticket.assignee]
    group = rt.rules.groups.get(ticket.group or "")
    return [group.lead, *group.members] if group is not None else []


def forward_followup(
    ctx: Ctx, msg: ParsedMessage, *, role: str, before: Status, files: Plan = NO_FILES
) -> None:
    """The requester or a cc wrote on a ticket that was open or resolved when
    the mail came: its workers get the new text (quoted history cut) and its
    attachments (up to the cap; the rest listed). `before`: the status the
    mail found, so the notice says what the mail changed (reopened, closed,
    back from waiting); `files`: what the notice carries and lists."""
    if before not in OPEN_STATES and before != Status.RESOLVED:
        return
    ticket = ctx.ticket
    sender = msg.sender
    context = {
        "event": "reply",
        "role": role,
        "sender": sender.addr if sender else "",
        "sender_name": sender.name if sender else "",
        "new_text": text.own_text(msg.text).strip()[:MAX_TEXT],
        "change": _change(before, ticket.status),
        "bounce": None,
    }
    actions.notify_agents(
        ctx, "agent_followup", working_agents(ctx.rt, ticket), context, attachments=files
    )


def _change(before: Status, after: Status) -> str | None:
    """What the mail did to the ticket, in the notice's words."""
    if after == before:
        return None
    if after == Status.CLOSED:
        return "closed"
    if before in (Status.RESOLVED, Status.CLOSED):
        return "reopened"
    if before == Status.PENDING:
        return "resumed"
    return None


def forward_bounce(ctx: Ctx, msg: ParsedMessage, report: bounces.Bounce | None) -> None:
    """Mail to the requester (or a cc) came back: whoever works the ticket must
    reach them another way. A report that names none of them (an agent's
    address, a forged one, one we cannot read) is kept on the ticket but not
    forwarded: a notice that bounced in turn must not bring another notice.
    Nor is one on a closed ticket: nobody works it any more."""
    ticket = ctx.ticket
    if report is None or (ticket.status not in OPEN_STATES and ticket.status != Status.RESOLVED):
        return
    people = {ticket.requester.lower(), *(a.lower() for a in ticket.cc)}
    failed = [a for a in report.failed_recipients if a.lower() in people]
    if not failed:
        return
    context = {
        "event": "bounce",
        "role": "bounce",
        "sender": msg.sender.addr if msg.sender else "",
        "sender_name": msg.sender.name if msg.sender else "",
        "new_text": text.own_text(msg.text).strip()[:MAX_TEXT],
        "attachments": [],
        "change": None,
        "bounce": {
            "failed": failed,
            "status": report.status,
            "diagnostic": report.diagnostic,
            "permanent": report.permanent,
        },
    }
    actions.notify_agents(ctx, "agent_followup", working_agents(ctx.rt, ticket), context)


def latest_request_text(tx: Tx, ticket: Ticket) -> str:
    """The requester's (or a cc's) latest own words on the ticket, quotes cut:
    what an escalation notice shows, so its reader knows the problem."""
    found: StoredMessage | None = None
    for message in tx.messages.of_ticket(ticket.number):
        if message.direction == "in" and message.kind in REQUEST_KINDS and not message.internal:
            found = message
    return text.own_text(found.body).strip()[:MAX_TEXT] if found else ""
