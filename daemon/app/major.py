"""Major incidents (SPEC §8): tickets linked to a parent, and what the
parent's work does to its children.

Many people report one outage; each keeps their own ticket (their thread,
their language, their SLA clock), linked to the one the agents work on.
What the agents say publicly on the parent reaches every open child's
requester on the child's own ticket: one mail per child, in the child's
thread, with the child's tag and language, to that requester (and the
child's cc) only, so nobody sees another requester's address. Resolving the
parent resolves its open children with the same code and note; each child's
requester is asked to confirm on their own ticket.

Decisions where SPEC is silent:

- One level, as ITIL's major incident: a ticket that is part of a major
  incident cannot be a parent, and a parent cannot become a child (so no
  cycle can form). Linking needs both tickets open; a ticket linked
  elsewhere moves to the new parent (unlinked from the old one).
- A public reply on the parent counts as the first response on each child
  that has had none: its requester received a person's answer; and a new or
  assigned child is in progress from then on, as after any reply. Nothing
  else changes: the child's targets stay its own, a pending child stays
  pending (it waits for its own requester), and the parent's `#pending`
  pauses neither the children nor their clocks.
- A reply with `#pending` asks the parent's requester something: it stays
  theirs and is not sent to the children.
- The children's mail does not name the parent's tag or subject: they were
  written by another requester.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from daemon.app import closure, slaclock
from daemon.app.actions import ActionRefused, Ctx, _set_status
from daemon.app.tickets import Actor, Runtime, queue_mail, record_event, thread_of
from daemon.core.domain import OPEN_STATES, Status, Ticket
from daemon.mail.attachparts import NO_FILES, Plan
from daemon.ports import Tx

#: The event on a child for mail that came from its parent.
FROM_PARENT = "from_parent"


# --- linking -------------------------------------------------------------------------


def link(ctx: Ctx, parent_number: int) -> None:
    """`#link HD-N` / `spocd ticket T link HD-N`: this ticket becomes part of
    the major incident HD-N. Refused (nothing changes) for itself, an unknown,
    merged or not open ticket, a parent that is itself a child, or a ticket
    that has children of its own."""
    child = ctx.ticket
    pid = ctx.rt.ticket_id(parent_number)
    if parent_number == child.number:
        raise ActionRefused(f"{ctx.tid}: cannot link a ticket to itself")
    if child.status not in OPEN_STATES:
        raise ActionRefused(
            f"{ctx.tid}: cannot link: the ticket is {child.status}; reopen it first"
        )
    if child.parent == parent_number:
        return
    parent = ctx.tx.tickets.get(parent_number, for_update=True)
    if parent is None:
        raise ActionRefused(f"{ctx.tid}: no ticket {pid} to link to")
    if parent.merged_into is not None:
        survivor = ctx.rt.ticket_id(parent.merged_into)
        raise ActionRefused(f"{ctx.tid}: {pid} was merged into {survivor}; link to {survivor}")
    if parent.status not in OPEN_STATES:
        raise ActionRefused(
            f"{ctx.tid}: cannot link to {pid}: it is {parent.status}; "
            "only an open ticket can be a major incident (reopen it first)"
        )
    if parent.parent is not None:
        top = ctx.rt.ticket_id(parent.parent)
        raise ActionRefused(
            f"{ctx.tid}: {pid} is itself part of the major incident {top}; link to {top} "
            "(major incidents have one level)"
        )
    own = ctx.tx.tickets.children(child.number)
    if own:
        names = ", ".join(ctx.rt.ticket_id(c.number) for c in own[:10])
        raise ActionRefused(
            f"{ctx.tid}: it is a major incident itself ({len(own)} linked: {names}); "
            f"a major incident cannot become part of another: unlink them or link them to {pid}"
        )
    if child.parent is not None:
        _detach(ctx, reason=f"linked to {pid}")
    child.parent = parent_number
    ctx.event("linked", parent=pid)
    record_event(ctx.tx, parent, ctx.now, ctx.actor, "linked", child=ctx.tid)


def unlink(ctx: Ctx) -> None:
    """`#unlink` / `spocd ticket T unlink`: no longer part of its major incident."""
    if ctx.ticket.parent is None:
        raise ActionRefused(f"{ctx.tid}: it is not linked to a major incident")
    _detach(ctx, reason=None)


def _detach(ctx: Ctx, reason: str | None) -> None:
    child = ctx.ticket
    old = child.parent
    assert old is not None
    pid = ctx.rt.ticket_id(old)
    child.parent = None
    ctx.event("unlinked", parent=pid, reason=reason)
    parent = ctx.tx.tickets.get(old)
    if parent is not None:
        record_event(ctx.tx, parent, ctx.now, ctx.actor, "unlinked", child=ctx.tid, reason=reason)


# --- what the parent's work does to the children -------------------------------------


def open_children(tx: Tx, parent: Ticket) -> list[Ticket]:
    """The parent's children still being worked on, locked for the change."""
    found = []
    for child in tx.tickets.children(parent.number):
        if child.status in OPEN_STATES:
            locked = tx.tickets.get(child.number, for_update=True)
            if locked is not None and locked.status in OPEN_STATES:
                found.append(locked)
    return found


def fan_out_public(
    ctx: Ctx,
    kind: str,
    text: str,
    *,
    attachments: Plan = NO_FILES,
    template: str = "major_reply",
    context: dict[str, Any] | None = None,
    each: Callable[[Ctx], None] | None = None,
) -> list[int]:
    """The agent's public words on the parent (`ctx.ticket`), mailed to every
    open child's requester (and cc) on the child's own ticket.

    `kind` is the message kind recorded on the child ("agent_reply",
    "workaround", ...); the template `major_reply` words the mail by it.
    Each child's mail is its own outbox row and its own outgoing message;
    the child gets a `from_parent` event, and the reply counts as its first
    response. `each(child_ctx)` runs for every child reached, before it is
    saved (a workaround records its restoration there). Returns the numbers
    of the children reached; the parent gets a `fanned_out` event naming
    them.

    The workaround (issue 16) calls it as
    `fan_out_public(ctx, "workaround", text, each=...)`: the mail then says a
    temporary solution restores the service while the fix goes on."""
    if not text.strip():
        return []
    reached = []
    agent = ctx.rt.agent_name(ctx.actor.address, ctx.actor.name)
    for child in open_children(ctx.tx, ctx.ticket):
        cctx = Ctx(ctx.tx, ctx.rt, ctx.now, ctx.actor, child)
        slaclock.record_response(ctx.tx, child, ctx.now)
        if child.status in (Status.NEW, Status.ASSIGNED):
            _set_status(cctx, Status.IN_PROGRESS, reason=f"reply on {ctx.tid}")
        mail = ctx.rt.composer.compose(
            template=template,
            kind=kind,
            ticket=child,
            to=[child.requester],
            cc=child.cc,
            context={"text": text, "agent": agent, "kind": kind, **(context or {})},
            now=ctx.now,
            thread=thread_of(ctx.tx, child, requester=True),
            auto_submitted=None,  # a person's words, as the reply on the parent
            attachments=attachments,
        )
        queue_mail(ctx.tx, ctx.rt, child, mail, ctx.now)
        cctx.event(FROM_PARENT, parent=ctx.tid, kind=kind, message_id=mail.message_id)
        if each is not None:
            each(cctx)
        cctx.save()
        reached.append(child.number)
    if reached:
        ctx.event("fanned_out", kind=kind, children=[ctx.rt.ticket_id(n) for n in reached])
    return reached


def fan_out_update(
    tx: Tx,
    rt: Runtime,
    parent: Ticket,
    now: datetime,
    *,
    happened: list[dict[str, Any]],
    since: datetime,
    actor: Actor,
) -> int:
    """The parent's scheduled status update, to every open child's requester
    on the child's own ticket: what happened on the incident, and what comes
    next by the child's own targets. Returns how many were queued (held ones,
    for a failing or rate-limited address, are recorded by `queue_mail`)."""
    pid = rt.ticket_id(parent.number)
    items = [i for i in happened if _for_children(i)]
    sent = 0
    for child in open_children(tx, parent):
        cctx = Ctx(tx, rt, now, actor, child)
        if child.first_responded_at is None:
            step, due = "first_response", child.first_response_due
        else:
            step, due = "resolution", child.resolution_due
        first_line = child.escalated_by
        mail = rt.composer.compose(
            template="major_update",
            kind="status_update",
            ticket=child,
            to=[child.requester],
            cc=[first_line] if first_line and first_line != child.requester else [],
            context={
                "happened": items,
                "since": since,
                "next": {"step": step, "due": due if due and due > now else None},
            },
            now=now,
            thread=thread_of(tx, child, requester=True),
            auto_submitted="auto-generated",
        )
        if queue_mail(tx, rt, child, mail, now):
            cctx.event(
                FROM_PARENT,
                parent=pid,
                kind="status_update",
                to=list(mail.recipients),
                items=len(items),
            )
            sent += 1
        cctx.save()
    return sent


def _for_children(item: dict[str, Any]) -> bool:
    """What of the parent's progress a child's requester is told: who works on
    it, that it moved on or was escalated, that work started. Not the parent's
    requester's replies, nor its priority or a wait for its requester: those
    are about someone else's ticket."""
    if item["type"] == "status":
        return item.get("to") == str(Status.IN_PROGRESS)
    return item["type"] in ("assigned", "group", "escalated")


def resolve_children(ctx: Ctx, code: str, note: str) -> list[int]:
    """The parent (`ctx.ticket`) was resolved: each open child is resolved
    with the same code and note, and its requester asked to confirm on their
    own ticket (the child's verification mail). A child that was waiting for
    its requester (pending) is resolved too, and its trail says so."""
    resolved = []
    for child in open_children(ctx.tx, ctx.ticket):
        cctx = Ctx(ctx.tx, ctx.rt, ctx.now, ctx.actor, child)
        was = child.status
        closure.resolve(cctx, code, note)
        cctx.event(
            "resolved_with_parent", parent=ctx.tid, was=str(was), pending=was == Status.PENDING
        )
        if was == Status.PENDING:
            cctx.event(
                "note",
                text=f"Resolved with the major incident {ctx.tid} while it was waiting "
                "for the requester (pending).",
            )
        cctx.save()
        resolved.append(child.number)
    if resolved:
        ctx.event("children_resolved", children=[ctx.rt.ticket_id(n) for n in resolved])
    return resolved
