"""A new ticket from one inbound message: open it, keep the request (or first
line's escalation and the incident inside it), acknowledge the requester and
tell the agents.

Split from `pipeline` (issue 13: one job per module), which decides that a
message opens a ticket; this module is what opening one does.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from daemon.app import actions, contacts
from daemon.app.notify import Thread
from daemon.app.tickets import (
    Actor,
    Runtime,
    attachment_items,
    open_ticket,
    outgoing_plan,
    record_event,
    record_inbound,
)
from daemon.core.domain import Channel, Ticket
from daemon.core.errors import Ignored
from daemon.mail import attachparts
from daemon.mail.attachparts import NO_FILES, Plan
from daemon.ports import Tx
from daemon.rules import ruleset as rules

if TYPE_CHECKING:  # the pipeline imports this module
    from daemon.app.pipeline import Incoming


def new_ticket(
    tx: Tx,
    rt: Runtime,
    incoming: Incoming,
    now: datetime,
    *,
    tagged: int | None = None,
    linked_to: int | None = None,
    note: str | None = None,
) -> Ticket:
    msg = incoming.msg
    decision = (
        incoming.decided
        if incoming.decided is not None
        and incoming.original is None
        and incoming.channel == Channel.EMAIL
        else rules.decide(
            rt.rules, incoming.incident, str(incoming.channel), requester=incoming.requester
        )
    )
    if decision.ignore:
        raise Ignored(", ".join(decision.matched))
    own = rt.settings.own_addresses
    cc = [a.addr for a in (*incoming.incident.to, *incoming.incident.cc) if a.addr not in own]
    if incoming.original is not None:
        # The original was addressed to first line (their shared mailbox):
        # none of its recipients is copied on the ticket's mail; first line
        # itself hears through `escalated_by`.
        cc = []
    ticket = open_ticket(
        tx,
        rt,
        msg=incoming.incident,
        decision=decision,
        requester=incoming.requester,
        now=now,
        channel=incoming.channel,
        escalated_by=incoming.escalated_by,
        external_ref=incoming.external_ref,
        cc=cc,
        linked_to=linked_to,
    )
    actor = Actor(incoming.sender)
    if tagged is not None:
        record_event(
            tx,
            ticket,
            now,
            actor,
            "tag_not_honoured",
            tag=rt.ticket_id(tagged),
            reason=note or "sender is not on that ticket",
        )
    if linked_to is not None:
        old = tx.tickets.get(linked_to)
        if old is not None:
            record_event(
                tx, old, now, actor, "follow_up_ticket", follow_up=rt.ticket_id(ticket.number)
            )
    if incoming.channel == Channel.ESCALATION:
        files = _record_escalation(tx, rt, incoming, ticket, now)
    else:
        row = record_inbound(tx, ticket, msg, kind="request", inbound_id=incoming.item.id, now=now)
        files = attachment_items(tx, row, msg.attachments, msg.html)
    _acknowledge(tx, rt, incoming, ticket, now)
    carried = rt.ticket_id(tagged) if tagged is not None else None
    _tell_agents(tx, rt, incoming, ticket, now, carried_tag=carried, files=outgoing_plan(rt, files))
    return ticket


def _tell_agents(
    tx: Tx,
    rt: Runtime,
    incoming: Incoming,
    ticket: Ticket,
    now: datetime,
    *,
    carried_tag: str | None = None,
    files: Plan = NO_FILES,
) -> None:
    """The assignee, or else the whole group, hears of a new ticket, with
    the request's attachments (`files`); and of the tag of another ticket a
    stranger's mail carried (`tag_not_honoured`), so they can tell a
    colleague forwarding a thread from a tag spoofer."""
    group = rt.rules.groups.get(ticket.group or "")
    if ticket.assignee:
        to = [ticket.assignee]
    elif group is not None:
        to = [group.lead, *group.members]
    else:
        return
    ctx = actions.Ctx(tx, rt, now, Actor("spocd", "system"), ticket)
    thread = Thread(references=incoming.msg.references[-20:]).after(incoming.msg.message_id)
    # The name the request came with (for an escalation, the original's),
    # beside the address it is checked against: agents know people by name.
    author = incoming.incident.sender
    context = {
        "requester_name": (
            author.name if author and author.addr.lower() == ticket.requester.lower() else ""
        ),
        "request_text": incoming.incident.text[:8000],
        "first_line_note": incoming.note.strip()[:8000] if incoming.original else "",
        "carried_tag": carried_tag,
    }
    actions.notify_agents(ctx, "agent_new", to, context, thread, attachments=files)


def _record_escalation(
    tx: Tx, rt: Runtime, incoming: Incoming, ticket: Ticket, now: datetime
) -> list[attachparts.Item]:
    """Both first line's note and the original incident stay on the ticket.
    Returns the attachments the agents' notice carries: the original's,
    and first line's own files (not the original again as a .eml)."""
    msg, original = incoming.msg, incoming.original
    row = record_inbound(
        tx,
        ticket,
        msg,
        kind="escalation",
        inbound_id=incoming.item.id,
        now=now,
        body=incoming.note if original is not None else msg.text,
    )
    files = attachment_items(tx, row, msg.attachments, msg.html)
    if original is not None:
        files = [f for f in files if f.attachment.content_type != "message/rfc822"]
        original_row = None
        if not tx.messages.exists(original.message_id):
            original_row = record_inbound(
                tx, ticket, original, kind="request", inbound_id=incoming.item.id, now=now
            )
        files = [
            *attachment_items(tx, original_row, original.attachments, original.html),
            *files,
        ]
    record_event(
        tx,
        ticket,
        now,
        Actor(incoming.sender),
        "escalated_by_first_line",
        by=incoming.escalated_by,
        external_ref=incoming.external_ref,
        forward_style=incoming.forward_style,
        requester_found=original is not None,
    )
    if original is None:
        record_event(
            tx,
            ticket,
            now,
            Actor("spocd", "system"),
            "requester_unknown",
            reason="the original sender was not found in the escalation; the "
            "first-line sender is the requester",
        )
    unique = {f.attachment.sha256: f for f in reversed(files)}
    return [f for f in files if unique[f.attachment.sha256] is f]


def _acknowledge(tx: Tx, rt: Runtime, incoming: Incoming, ticket: Ticket, now: datetime) -> None:
    if incoming.automatic is not None:
        record_event(
            tx,
            ticket,
            now,
            Actor("spocd", "system"),
            "auto_reply_suppressed",
            kind="ack",
            reason=f"{incoming.automatic.kind}: {incoming.automatic.reason}",
        )
        return
    # The request is the whole thread so far: answer it without a lookup.
    thread = Thread(references=incoming.msg.references[-20:]).after(incoming.msg.message_id)
    cc = (
        [incoming.escalated_by]
        if incoming.escalated_by and (incoming.escalated_by != ticket.requester)
        else []
    )
    copies = contacts.copied(rt, ticket, cc)
    mail = rt.composer.compose(
        template="ack",
        kind="ack",
        ticket=ticket,
        to=[ticket.requester],
        cc=[*cc, *copies],
        context={},
        now=now,
        thread=thread,
        auto_submitted="auto-replied",
    )
    contacts.queue_with_copies(tx, rt, ticket, mail, copies, now)
